// The first half of the rules labeller (rules.cpp): a report cut into sections and
// sentences, tokens matched against the lexicon, and the ConText state of a span — what the
// labelling rules then read. Only rules.cpp includes it.
#pragma once

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "endoked/core/text.h"
#include "endoked/report/rules.h"
#include "lexicon.h"

namespace endoked::report::detail {

struct Sentence {
  std::int32_t first = 0, last = 0;  // tokens [first, last)
  SectionKind kind = SectionKind::kFindings;
  std::int32_t match_first = 0, match_last = 0;  // matches [match_first, match_last)
  std::int32_t origin = -1;  // clauses cut from one sentence share it (split_findings)
};

// Per-thread buffers: label() allocates almost nothing in the steady state.
struct Work {
  std::string lower, scratch;
  std::vector<Token> tokens;
  std::vector<Match> matches;
  std::vector<Sentence> sentences;
  std::vector<char> barrier, item;
};

inline bool is_cjk_lead(const std::string& s, std::size_t i) {
  // U+4E00..U+9FFF are E4 B8 80 .. E9 BF BF in UTF-8.
  const auto c = static_cast<unsigned char>(s[i]);
  return c >= 0xE4 && c <= 0xE9 && i + 2 < s.size();
}

class Analysis {
 public:
  Analysis(const Lexicon& lex, const std::string& report, Work& w) : L(lex), text(report), w(w) {}

  void split(bool headers = true) {
    auto& lower = w.lower;
    lower.assign(text);
    text::lower_in_place(lower);
    if (L.language == "en") spoken_stops(lower);
    // Dot leaders of a form ("Polyps ........ None") are a colon, not a row of full stops.
    for (std::size_t i = 0; i + 3 <= lower.size(); ++i) {
      if (lower[i] != '.' || lower[i + 1] != '.' || lower[i + 2] != '.') continue;
      std::size_t e = i;
      while (e < lower.size() && lower[e] == '.') ++e;
      if (e - i >= 4 && i > 0 && lower[i - 1] == ' ' && e < lower.size() && lower[e] == ' ') {
        lower[i] = ':';
        std::fill(lower.begin() + static_cast<std::ptrdiff_t>(i + 1),
                  lower.begin() + static_cast<std::ptrdiff_t>(e), ' ');
      }
      i = e;
    }
    // Traditional characters read as simplified everywhere, also by the rules that look at a
    // sentence's text ("各見", "均"); one CJK character for another keeps every offset.
    if (!L.fold.empty())
      for (std::size_t i = 0; i + 3 <= lower.size(); ++i) {
        if (static_cast<unsigned char>(lower[i]) < 0xE0) continue;
        const auto f = L.fold.find(lower.substr(i, 3));
        if (f != L.fold.end() && f->second.size() == 3) lower.replace(i, 3, f->second);
        i += 2;
      }
    w.tokens.clear();
    w.sentences.clear();
    w.matches.clear();
    SectionKind kind = L.default_section;
    std::size_t ls = 0;
    while (ls < lower.size()) {
      std::size_t le = lower.find('\n', ls);
      if (le == std::string::npos) le = lower.size();
      if (headers) le = std::min(le, inline_header(ls, le));
      std::size_t body = ls;
      const SectionKind was = kind;
      if (headers) detect_header(ls, le, kind, body);
      const std::size_t before = w.tokens.size();
      const std::size_t first_sentence = w.sentences.size();
      L.tokenize(lower, body, le, w.tokens, w.scratch);
      add_sentences(before, kind);
      // "肠道准备：良好。进镜至回盲部。…见一枚息肉": after the field's own sentence the line goes
      // on in the section before.
      if (body != ls && kind == SectionKind::kPreparation && was != SectionKind::kPreparation &&
          was != SectionKind::kIndication && was != SectionKind::kIgnore)
        for (std::size_t k = first_sentence + 1; k < w.sentences.size(); ++k)
          w.sentences[k].kind = was;
      // "Ind: FHx CRC." with text on its line is a one-line field: the next line goes back to
      // the section before (terse notes write the findings after it without a header).
      if (body != ls && body < le && w.tokens.size() > before &&
          (kind == SectionKind::kIndication || kind == SectionKind::kPreparation ||
           kind == SectionKind::kIgnore) &&
          was != SectionKind::kIndication && was != SectionKind::kPreparation &&
          was != SectionKind::kIgnore)
        kind = was;
      ls = le < lower.size() && lower[le] == '\n' ? le + 1 : le;
    }
  }

  // Dictation read back word for word: "… removed with cold snare period in the sigmoid …".
  // Each spoken stop becomes a full stop of the same length (evidence offsets are unchanged).
  static void spoken_stops(std::string& lower) {
    for (const std::string word : {"period", "full stop", "new paragraph"})
      for (std::size_t at = lower.find(word); at != std::string::npos;
           at = lower.find(word, at + word.size())) {
        const std::size_t end = at + word.size();
        const bool alone = (at == 0 || lower[at - 1] == ' ') &&
                           (end == lower.size() || lower[end] == ' ' || lower[end] == '\n');
        if (alone) lower.replace(at, word.size(), std::string(word.size() - 1, ' ') + ".");
      }
  }

  // "Colonoscopy 21/01. Indication: …": where a header opens a sentence inside the line
  // [ls, le), the line is cut there (returns le when none does).
  std::size_t inline_header(std::size_t ls, std::size_t le) const {
    const std::string& lower = w.lower;
    static const std::string kFullStop = "\xE3\x80\x82", kSemicolon = "\xEF\xBC\x9B",
                             kColon = "\xEF\xBC\x9A";
    for (std::size_t i = ls; i + 1 < le; ++i) {
      std::size_t a = 0;
      // "…未见明显异常 诊断：结肠多发息肉": a header after a space between Chinese characters.
      const bool spaced =
          lower[i] == ' ' && i >= ls + 3 && is_cjk_lead(lower, i + 1) && is_cjk_lead(lower, i - 3);
      if (lower[i] == '.' || lower[i] == ';' || spaced)
        a = i + 1;

      else if (lower.compare(i, 3, kFullStop) == 0 || lower.compare(i, 3, kSemicolon) == 0)
        a = i + 3;
      else
        continue;
      const bool ascii = a == i + 1 && !spaced;
      while (a < le && lower[a] == ' ') ++a;
      if ((ascii && a == i + 1) || a >= le) continue;  // "1.5", "e.g." are no sentence ends
      std::size_t colon = lower.find(':', a);
      const std::size_t wide = lower.find(kColon, a);
      if (wide < colon) colon = wide;
      if (colon == std::string::npos || colon >= le || colon - a > 40) continue;
      std::string h = lower.substr(a, colon - a);
      while (!h.empty() && h.back() == ' ') h.pop_back();
      SectionKind k;
      if (header_or_qualified(h, k)) return a;
    }
    return le;
  }

  const Lexicon& L;
  const std::string& text;
  Work& w;

  const Tag* tag_of(const Match& m, Cat c) const {
    for (const auto& t : L.phrases[static_cast<std::size_t>(m.phrase)].tags)
      if (t.cat == c) return &t;
    return nullptr;
  }
  Span span(std::int32_t first_tok, std::int32_t last_tok) const {
    return {w.tokens[static_cast<std::size_t>(first_tok)].begin,
            w.tokens[static_cast<std::size_t>(last_tok)].end};
  }
  Span span(const Match& m) const { return span(m.first, m.last); }
  Span sentence_span(const Sentence& s) const { return span(s.first, s.last - 1); }

  // ConText: which modifiers of the sentence reach tokens [tf, tl].
  MentionState state_of(const Sentence& s, std::int32_t tf, std::int32_t tl) const {
    MentionState st;
    auto blocked = [&](std::int32_t a, std::int32_t b) {  // any barrier in tokens [a, b)
      for (std::int32_t i = a; i < b; ++i)
        if (w.barrier[static_cast<std::size_t>(i)]) return true;
      return false;
    };
    auto terminated = [&](std::int32_t a, std::int32_t b) {  // a barrier that is no clause break
      for (std::int32_t i = a; i < b; ++i)
        if (w.barrier[static_cast<std::size_t>(i)] &&
            w.tokens[static_cast<std::size_t>(i)].type != TokType::kClauseBreak)
          return true;
      return false;
    };
    for (std::int32_t k = s.match_first; k < s.match_last; ++k) {
      const Match& m = w.matches[static_cast<std::size_t>(k)];
      if (m.last >= tf && m.first <= tl) continue;  // the target itself
      for (const auto& t : L.phrases[static_cast<std::size_t>(m.phrase)].tags) {
        if (t.cat != Cat::kModifier) continue;
        const bool fwd = t.dir != Dir::kBackward && m.last < tf && tf - m.last <= L.scope_tokens &&
                         !blocked(m.last + 1, tf);
        // A trailing clause doubts what it follows ("直肠隆起性病变，性质待定"): backward
        // "possible" triggers cross clause breaks (not terminators); negations do not
        // ("管状腺瘤，切缘阴性").
        const bool bwd =
            t.dir != Dir::kForward && m.first > tl && m.first - tl <= L.scope_tokens &&
            (t.mod == Mod::kPossible ? !terminated(tl + 1, m.first) : !blocked(tl + 1, m.first));
        if (!fwd && !bwd) continue;
        st.triggers.push_back(span(m));
        switch (t.mod) {
          case Mod::kNegated:
            st.negated = true;
            break;
          case Mod::kPossible:
            st.possible = true;
            break;
          case Mod::kHistorical:
            st.historical = true;
            break;
          case Mod::kFamily:
            st.family = true;
            break;
          case Mod::kHypothetical:
            st.hypothetical = true;
            break;
        }
      }
    }
    return st;
  }

  void mark_barriers() {
    // A clause break right before a finding continues a list ("未见息肉，肿物及溃疡"): the
    // modifiers of the list reach across it.
    w.item.assign(w.tokens.size() + 1, 0);
    for (const auto& m : w.matches)
      if (tag_of(m, Cat::kTarget) || tag_of(m, Cat::kNonPolyp) || tag_of(m, Cat::kHistology))
        w.item[static_cast<std::size_t>(m.first)] = 1;
    w.barrier.assign(w.tokens.size(), 0);
    for (std::size_t i = 0; i < w.tokens.size(); ++i)
      if (w.tokens[i].type == TokType::kClauseBreak && !w.item[i + 1]) w.barrier[i] = 1;
    for (const auto& m : w.matches)
      if (tag_of(m, Cat::kTerminate)) w.barrier[static_cast<std::size_t>(m.first)] = 1;
    // "1. SSL without dysplasia 2. Tubular adenoma": an enumerated item ends the one before.
    for (std::size_t i = 0; i + 2 < w.tokens.size(); ++i) {
      const Token& t = w.tokens[i];
      if (t.type != TokType::kNumber || t.number != std::floor(t.number) || t.number > 30 ||
          !w.item[i + 2])
        continue;
      const Token& c = w.tokens[i + 1];
      const std::string_view v(w.lower.data() + c.begin, static_cast<std::size_t>(c.end - c.begin));
      if (v == "." || v == ")" || v == "\xEF\xBC\x89" || v == "\xE3\x80\x81") w.barrier[i] = 1;
    }
  }

  void match_all() {
    for (auto& s : w.sentences) {
      s.match_first = static_cast<std::int32_t>(w.matches.size());
      L.match(w.tokens, static_cast<std::size_t>(s.first), static_cast<std::size_t>(s.last),
              w.matches);
      s.match_last = static_cast<std::int32_t>(w.matches.size());
    }
    split_findings();
    today_in_history();
    mark_barriers();
  }

  // "肝曲见一枚黄豆大小息肉，横结肠见一枚绿豆大小息肉": a clause led by a segment and 见 is a
  // finding of its own; the sentence is cut before it.
  void split_findings() {
    static const std::string kSee = "\xE8\xA7\x81", kSeeT = "\xE8\xA6\x8B";  // 见, 見
    auto sees = [&](std::int32_t k) {
      const Token& t = w.tokens[static_cast<std::size_t>(k)];
      const std::string_view v(w.lower.data() + t.begin, static_cast<std::size_t>(t.end - t.begin));
      return v == kSee || v == kSeeT;
    };
    auto token_text = [&](std::int32_t k) {
      const Token& t = w.tokens[static_cast<std::size_t>(k)];
      return std::string_view(w.lower.data() + t.begin, static_cast<std::size_t>(t.end - t.begin));
    };
    std::vector<Sentence> out;
    out.reserve(w.sentences.size());
    std::int32_t origins = 0;
    // Sentence s ends before token `last` (matches before `m`); the rest, from token `next`,
    // goes on as s. The pieces share an origin.
    auto cut = [&](Sentence& s, std::int32_t last, std::int32_t next, std::int32_t m) {
      if (s.origin < 0) s.origin = origins++;
      Sentence head = s;
      head.last = last;
      head.match_last = m;
      out.push_back(head);
      s.first = next;
      s.match_first = m;
    };
    // What the matches [m0, m1) name: polyp words, a size, a segment.
    struct Parts {
      int targets = 0;
      bool size = false, site = false;
    };
    auto parts = [&](std::int32_t m0, std::int32_t m1) {
      Parts p;
      for (std::int32_t n = m0; n < m1; ++n) {
        const Match& y = w.matches[static_cast<std::size_t>(n)];
        p.targets += tag_of(y, Cat::kTarget) != nullptr;
        p.size = p.size || tag_of(y, Cat::kSizeUnit);
        p.site = p.site || tag_of(y, Cat::kSegment);
      }
      return p;
    };
    for (Sentence s : w.sentences) {
      // "…息肉予冷圈套切除，另见2枚0.2cm微小息肉予钳除": 另见 opens a finding of its own.
      for (std::int32_t k = s.first + 1; s.kind == SectionKind::kFindings && k + 2 < s.last; ++k) {
        if (w.tokens[static_cast<std::size_t>(k)].type != TokType::kClauseBreak ||
            token_text(k + 1) != "\xE5\x8F\xA6" || !sees(k + 2))  // 另见
          continue;
        std::int32_t m = s.match_first;
        while (m < s.match_last && w.matches[static_cast<std::size_t>(m)].first <= k) ++m;
        if (parts(m, s.match_last).targets > 0) cut(s, k, k + 1, m);
      }
      // "…a 7 mm polyp at the splenic flexure which was removed with a cold snare, and a 2 mm
      // polyp in the rectum which was removed…": "and a" opens a second sized, sited polyp.
      // (One polyp on each side: "two polyps, a 4 mm polyp in the cecum and a 9 mm polyp in the
      // sigmoid" is one description.)
      // ("I found two small polyps in the sigmoid which I removed…, and a further one in the
      // rectum, about 4 mm across": one sited polyp word on each side, a size on either.)
      auto sited_polyp = [&](std::int32_t m0, std::int32_t m1) {
        const Parts p = parts(m0, m1);
        return p.targets == 1 && p.site;
      };
      for (std::int32_t k = s.first + 1; s.kind == SectionKind::kFindings && k + 2 < s.last; ++k) {
        const std::string_view next = token_text(k + 1);
        if ((token_text(k) != "and" && token_text(k) != "plus") ||
            (next != "a" && next != "an" && next != "another"))
          continue;
        std::int32_t m = s.match_first;
        while (m < s.match_last && w.matches[static_cast<std::size_t>(m)].first <= k) ++m;
        if (sited_polyp(s.match_first, m) && sited_polyp(m, s.match_last) &&
            (parts(s.match_first, m).size || parts(m, s.match_last).size))
          cut(s, k, k, m);
      }
      for (std::int32_t m = s.match_first; m < s.match_last; ++m) {
        const Match& x = w.matches[static_cast<std::size_t>(m)];
        std::int32_t b = x.first - 1;
        // (… or a space between Chinese characters: "予氩离子凝固术 乙状结肠见黄豆大小息肉1枚".)
        // ("，另降结肠见数枚…": 另, "also", may lead the clause.)
        std::int32_t lead = x.first;
        if (b > s.first && token_text(b) == "\xE5\x8F\xA6") lead = b, b = b - 1;  // 另
        const auto at = static_cast<std::size_t>(w.tokens[static_cast<std::size_t>(lead)].begin);
        const bool spaced =
            b > s.first && at >= 4 && w.lower[at - 1] == ' ' && is_cjk_lead(w.lower, at - 4);
        // ("降结肠及乙状结肠见": segments joined by 及, 和 or 、 before the 见.)
        std::int32_t end = x.last;
        for (std::int32_t n = m + 1; n < s.match_last; ++n) {
          const Match& y = w.matches[static_cast<std::size_t>(n)];
          const std::string_view j = end + 1 < s.last ? token_text(end + 1) : std::string_view();
          if (!tag_of(y, Cat::kSegment) || y.first != end + 2 ||
              (j != "\xE5\x8F\x8A" && j != "\xE5\x92\x8C" && j != "\xE3\x80\x81"))
            break;
          end = y.last;
        }
        // "…a 9 mm polyp, removed with a hot snare, and in the descending colon a 5 mm polyp
        // removed with a cold snare": "and in the <segment>" with a sized polyp on each side.
        bool and_in = false;
        if (s.kind == SectionKind::kFindings && tag_of(x, Cat::kSegment) && x.first - 3 > s.first &&
            token_text(x.first - 1) == "the" &&
            (token_text(x.first - 2) == "in" || token_text(x.first - 2) == "at") &&
            token_text(x.first - 3) == "and") {
          auto sized_polyp = [&](std::int32_t m0, std::int32_t m1) {
            const Parts p = parts(m0, m1);
            return p.targets > 0 && p.size;
          };
          and_in = sized_polyp(s.match_first, m) && sized_polyp(m + 1, s.match_last);
        }
        if (and_in) {
          cut(s, x.first - 3, x.first - 3, m);
          continue;
        }
        if (s.kind != SectionKind::kFindings || !tag_of(x, Cat::kSegment) || b <= s.first ||
            (w.tokens[static_cast<std::size_t>(b)].type != TokType::kClauseBreak && !spaced) ||
            end + 1 >= s.last || !sees(end + 1))
          continue;
        cut(s, spaced ? b + 1 : b, spaced ? lead : b + 1, m);
      }
      out.push_back(s);
    }
    w.sentences.swap(out);
  }

  // "现病史：……今日行无痛肠镜：降结肠见一枚息肉", "HPI: … Colonoscopy today showed …": an
  // outpatient note tells today's exam inside its history; from that sentence to the end of its
  // line the text is findings.
  void today_in_history() {
    bool flipping = false;
    std::int32_t line_end = -1;  // byte offset of the newline that ends the flipped line
    for (auto& s : w.sentences) {
      if (s.kind != SectionKind::kIndication) {
        flipping = false;
        continue;
      }
      const auto begin = w.tokens[static_cast<std::size_t>(s.first)].begin;
      if (flipping && begin < line_end) {
        s.kind = SectionKind::kFindings;
        continue;
      }
      flipping = false;
      // "于2024-04-09行无痛结肠镜检查：进镜至…": the exam and a colon, then what it saw.
      {
        const auto end = w.tokens[static_cast<std::size_t>(s.last - 1)].end;
        const std::string_view said(w.lower.data() + begin, static_cast<std::size_t>(end - begin));
        const std::size_t scope = said.find("\xE9\x95\x9C");  // 镜
        if (scope != std::string_view::npos) {
          const std::size_t colon = said.find("\xEF\xBC\x9A", scope);  // ：
          const std::size_t ascii = said.find(':', scope);
          const std::size_t c = std::min(colon, ascii);
          bool history = false;
          for (std::int32_t k = s.match_first; k < s.match_last; ++k)
            history =
                history ||
                (tag_of(w.matches[static_cast<std::size_t>(k)], Cat::kHistorySentence) &&
                 w.tokens[static_cast<std::size_t>(w.matches[static_cast<std::size_t>(k)].first)]
                             .begin -
                         begin <
                     static_cast<std::int32_t>(scope));
          flipping = !history && c != std::string_view::npos && c - scope <= 12;
        }
      }
      for (std::int32_t k = s.match_first; k < s.match_last && !flipping; ++k) {
        const Match& m = w.matches[static_cast<std::size_t>(k)];
        if (!tag_of(m, Cat::kCurrent)) continue;
        const std::int32_t from = std::max(s.first, m.first - 5),
                           to = std::min(s.last - 1, m.last + 8);
        const std::string near = w.lower.substr(
            static_cast<std::size_t>(w.tokens[static_cast<std::size_t>(from)].begin),
            static_cast<std::size_t>(w.tokens[static_cast<std::size_t>(to)].end -
                                     w.tokens[static_cast<std::size_t>(from)].begin));
        flipping = near.find("\xE9\x95\x9C") != std::string::npos ||  // 镜
                   near.find("colonoscop") != std::string::npos;
      }
      // … and the sentence tells what it saw (见, showed, revealed, found).
      const auto end = w.tokens[static_cast<std::size_t>(s.last - 1)].end;
      const std::string said =
          w.lower.substr(static_cast<std::size_t>(begin), static_cast<std::size_t>(end - begin));
      flipping = flipping && (said.find("\xE8\xA7\x81") != std::string::npos ||  // 见
                              said.find("show") != std::string::npos ||
                              said.find("reveal") != std::string::npos ||
                              said.find("found") != std::string::npos);
      if (!flipping) continue;
      s.kind = SectionKind::kFindings;
      const auto nl = w.lower.find('\n', static_cast<std::size_t>(begin));
      line_end = nl == std::string::npos ? static_cast<std::int32_t>(w.lower.size())
                                         : static_cast<std::int32_t>(nl);
    }
  }

 private:
  void detect_header(std::size_t ls, std::size_t le, SectionKind& kind, std::size_t& body) const {
    const std::string& lower = w.lower;
    std::size_t a = ls;
    while (a < le && (lower[a] == ' ' || lower[a] == '\t')) ++a;
    // 【检查所见】 or [Findings]: the bracket is the header, the text after it the body.
    for (const auto& [open, close] :
         {std::pair<std::string, std::string>{"\xE3\x80\x90", "\xE3\x80\x91"},
          std::pair<std::string, std::string>{"[", "]"},
          std::pair<std::string, std::string>{"*** ", " ***"},
          std::pair<std::string, std::string>{"=== ", " ==="}})
      if (lower.compare(a, open.size(), open) == 0) {
        const std::size_t c = lower.find(close, a);
        if (c != std::string::npos && c < le &&
            header_or_qualified(lower.substr(a + open.size(), c - a - open.size()), kind)) {
          body = c + close.size();
          return;
        }
      }
    const std::size_t limit = std::min(le, a + 80);
    std::size_t colon = std::string::npos, after = 0;
    for (std::size_t i = a; i < limit; ++i) {
      if (lower[i] == ':') {
        colon = i;
        after = i + 1;
        break;
      }
      if (i + 2 < le && lower.compare(i, 3, "\xEF\xBC\x9A") == 0) {  // '：'
        colon = i;
        after = i + 3;
        break;
      }
    }
    auto trimmed = [&](std::size_t b, std::size_t e) {
      while (e > b && (lower[e - 1] == ' ' || lower[e - 1] == '\t' || lower[e - 1] == '\r')) --e;
      return lower.substr(b, e - b);
    };
    if (colon != std::string::npos && header_or_qualified(trimmed(a, colon), kind)) {
      body = after;
      // "Histology (pot 1, desc colon): tubular adenoma": the qualifier names the specimen; it
      // stays with the result.
      if (kind == SectionKind::kPathology) {
        const std::size_t open = std::min(lower.find('(', a), lower.find("\xEF\xBC\x88", a));
        SectionKind k;
        if (open < colon && header_kind(trimmed(a, open), k)) body = open;
      }
      return;
    }
    // A line that is only a header ("FINDINGS"), without the two-word forms ("Prep good.").
    if (le - a <= 60 && header_or_qualified(trimmed(a, le), kind, false)) body = le;
    // … also a long qualifier in parentheses closing the line ("HISTOLOGY (reported 29/02/2024,
    // added to report 04/03/2024 - RA)").
    if (body != le && le - a <= 200) {
      const std::string whole = trimmed(a, le);
      const std::size_t open = whole.find('(');
      SectionKind k;
      std::string head = open != std::string::npos ? trimmed(a, a + open) : std::string();
      // ("SURGICAL PATHOLOGY REPORT (final, …)": a header and the word "report".)
      if (!header_kind(head, k) && head.size() > 7 &&
          head.compare(head.size() - 7, 7, " report") == 0)
        head.resize(head.size() - 7);
      if (open != std::string::npos && open > 0 && !whole.empty() && whole.back() == ')' &&
          header_kind(head, k)) {
        kind = k;
        body = le;
      }
    }
    // … also with a report status after a dash ("PATHOLOGY - FINAL"; not "Findings - normal").
    const std::string line = le - a <= 60 ? trimmed(a, le) : std::string();
    if (const std::size_t dash = line.find(" - "); body != le && dash != std::string::npos) {
      static const std::set<std::string> status = {"final",    "final report", "preliminary",
                                                   "amended",  "corrected",    "revised",
                                                   "addendum", "report",       "supplementary"};
      if (status.count(line.substr(dash + 3)) && header_kind(line.substr(0, dash), kind)) body = le;
    }
  }

  // A header, or one qualified in parentheses: the parenthesis's first item when it is a header
  // itself ("addendum (pathology, 5 days later)" → pathology), else the words before it
  // ("病理诊断（2024-03-18补充）" → pathology).
  bool header_or_qualified(const std::string& h, SectionKind& kind, bool two_words = true) const {
    if (header_kind(h, kind)) return true;
    // Two languages or a number beside the header: "endoscopic findings 镜检所见",
    // "pathology 病理号 s24-1" (never a header followed by words: "findings - polyps, in order").
    if (const std::size_t sp = h.find(' '); two_words && sp != std::string::npos && sp > 0) {
      // Where the script changes ("endoscopic findings 镜检所见", "病理 histology").
      const bool ascii_first = static_cast<unsigned char>(h[0]) < 0x80;
      std::size_t cjk = 0;
      while (cjk < h.size() && (static_cast<unsigned char>(h[cjk]) < 0x80) == ascii_first) ++cjk;
      auto trim = [](std::string t) {
        while (!t.empty() && t.back() == ' ') t.pop_back();
        while (!t.empty() && t.front() == ' ') t.erase(0, 1);
        return t;
      };
      if (cjk > 0 && cjk < h.size() &&
          (header_kind(trim(h.substr(0, cjk)), kind) || header_kind(trim(h.substr(cjk)), kind)))
        return true;
      int run = 0, longest = 0;  // the longest run of letters after the first word
      for (std::size_t i = sp; i < h.size(); ++i) {
        run = (h[i] >= 'a' && h[i] <= 'z') ? run + 1 : 0;
        longest = std::max(longest, run);
      }
      // ("colonoscopy 2020: two adenomas removed" is history, not a header.)
      const bool dated = sp + 1 < h.size() && h[sp + 1] >= '0' && h[sp + 1] <= '9';
      // ("PATH 11/18/24:", "Path 22/05:", "Histology 28.03.2024:": a date stamps the section.)
      int seps = 0;
      bool full_date = dated;
      for (std::size_t i = sp + 1; i < h.size() && full_date; ++i) {
        const char c = h[i];
        if (c == '/' || c == '.' || c == '-')
          ++seps;
        else
          full_date = c >= '0' && c <= '9';
      }
      full_date = full_date && (seps == 2 || (seps == 1 && h.find('/') != std::string::npos));
      if (longest < 3 && (!dated || full_date) && header_kind(h.substr(0, sp), kind)) return true;
    }
    // "pathology - final report", "corrected report - addendum".
    if (const std::size_t dash = h.find(" - "); two_words && dash != std::string::npos && dash > 0)
      if (header_or_qualified(h.substr(0, dash), kind, false) ||
          header_or_qualified(h.substr(dash + 3), kind, false))
        return true;
    if (const std::size_t comma = h.find(',');
        two_words && comma != std::string::npos && comma > 0) {
      std::string head = h.substr(0, comma);
      while (!head.empty() && head.back() == ' ') head.pop_back();
      if (header_kind(head, kind)) return true;
    }
    std::size_t open = h.find('('), open_len = 1;
    const std::size_t wide = h.find("\xEF\xBC\x88");  // '（'
    if (wide != std::string::npos && (open == std::string::npos || wide < open))
      open = wide, open_len = 3;
    if (open == std::string::npos || open == 0) return false;
    std::string inner = h.substr(open + open_len);
    for (const char* stop : {",", ")", "\xEF\xBC\x8C", "\xEF\xBC\x89", ";"})
      inner = inner.substr(0, inner.find(stop));
    auto trim = [](std::string t) {
      while (!t.empty() && (t.back() == ' ' || t.back() == '-')) t.pop_back();
      while (!t.empty() && (t.front() == ' ' || t.front() == '-')) t.erase(0, 1);
      return t;
    };
    // (Only after a few words: "2022年于外院行息肉EMR术（病理：管状腺瘤）" is a sentence.)
    const std::string before = trim(h.substr(0, open));
    const bool short_head =
        before.size() <= 30 &&
        std::none_of(before.begin(), before.end(), [](char c) { return c >= '0' && c <= '9'; });
    return (short_head && header_kind(trim(inner), kind)) || header_kind(before, kind);
  }

  // A known header, also with two adjacent letters swapped ("FNIDINGS"), or in traditional
  // characters (病理報告: split() has folded them already).
  bool header_kind(std::string h, SectionKind& kind) const {
    auto it = L.headers.find(h);
    if (it == L.headers.end() && static_cast<int>(h.size()) >= L.typo_min_length) {
      // One letter dropped ("histolgy", "impresion").
      auto d = L.dropped.find(h);
      if (d != L.dropped.end() && d->second >= 0)
        it = L.headers.find(L.words[static_cast<std::size_t>(d->second)]);
    }
    if (it == L.headers.end() && static_cast<int>(h.size()) >= L.typo_min_length &&
        L.header_lengths.count(h.size()))
      for (std::size_t k = 0; k + 1 < h.size() && it == L.headers.end(); ++k) {
        if (h[k] == h[k + 1]) continue;
        std::swap(h[k], h[k + 1]);
        it = L.headers.find(h);
        std::swap(h[k], h[k + 1]);
      }
    if (it == L.headers.end()) return false;
    kind = it->second;
    return true;
  }

  // "(2)" / "（2）": the token i opens a numbered item.
  bool item_number(std::size_t i) const {
    auto is = [&](std::size_t k, const char* a, const char* b) {
      if (k >= w.tokens.size()) return false;
      const Token& t = w.tokens[k];
      const std::string_view v = std::string_view(w.lower).substr(
          static_cast<std::size_t>(t.begin), static_cast<std::size_t>(t.end - t.begin));
      return v == a || v == b;
    };
    // ("Multiple (4) sessile polyps": a count in brackets after a vague word is no item.)
    if (i > 0 && (is(i - 1, "multiple", "several") || is(i - 1, "numerous", "many"))) return false;
    return is(i, "(", "\xEF\xBC\x88") && i + 2 < w.tokens.size() &&
           w.tokens[i + 1].type == TokType::kNumber && is(i + 2, ")", "\xEF\xBC\x89");
  }

  void add_sentences(std::size_t from, SectionKind kind) {
    std::size_t start = from;
    for (std::size_t i = from; i <= w.tokens.size(); ++i) {
      const bool item = i < w.tokens.size() && i > start && item_number(i);
      if (i < w.tokens.size() && w.tokens[i].type != TokType::kSentenceBreak && !item) continue;
      // "1. Cecum, 5 mm": the number and its full stop open an item, they end no sentence.
      if (i < w.tokens.size() && !item && i == start + 1 && start == from &&
          w.tokens[start].type == TokType::kNumber &&
          w.lower[static_cast<std::size_t>(w.tokens[i].begin)] == '.')
        continue;
      if (i > start)
        w.sentences.push_back(
            {static_cast<std::int32_t>(start), static_cast<std::int32_t>(i), kind});
      start = item ? i : i + 1;
    }
  }
};

}  // namespace endoked::report::detail
