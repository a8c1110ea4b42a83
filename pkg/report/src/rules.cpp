// The rule-based report labeller: sections → sentences → phrase matches → ConText states →
// polyp descriptions → report-level labels. See endoked/report/rules.h.
#include "endoked/report/rules.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string_view>

#include "endoked/core/error.h"
#include "endoked/core/text.h"
#include "lexicon.h"

namespace endoked::report {
namespace {

struct Sentence {
  std::int32_t first = 0, last = 0;  // tokens [first, last)
  SectionKind kind = SectionKind::kFindings;
  std::int32_t match_first = 0, match_last = 0;  // matches [match_first, match_last)
};

struct Mention {
  std::int32_t first = 0, last = 0;  // tokens, inclusive
  std::string what;                  // polyp | polypectomy | histology
  MentionState state;
};

// Per-thread buffers: label() allocates almost nothing in the steady state.
struct Work {
  std::string lower, scratch;
  std::vector<Token> tokens;
  std::vector<Match> matches;
  std::vector<Sentence> sentences;
  std::vector<char> barrier;
};

bool is_cjk_lead(const std::string& s, std::size_t i) {
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
    w.tokens.clear();
    w.sentences.clear();
    w.matches.clear();
    SectionKind kind = L.default_section;
    std::size_t ls = 0;
    while (ls < lower.size()) {
      std::size_t le = lower.find('\n', ls);
      if (le == std::string::npos) le = lower.size();
      std::size_t body = ls;
      if (headers) detect_header(ls, le, kind, body);
      const std::size_t before = w.tokens.size();
      L.tokenize(lower, body, le, w.tokens, w.scratch);
      add_sentences(before, kind);
      ls = le + 1;
    }
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
    for (std::int32_t k = s.match_first; k < s.match_last; ++k) {
      const Match& m = w.matches[static_cast<std::size_t>(k)];
      if (m.last >= tf && m.first <= tl) continue;  // the target itself
      for (const auto& t : L.phrases[static_cast<std::size_t>(m.phrase)].tags) {
        if (t.cat != Cat::kModifier) continue;
        const bool fwd = t.dir != Dir::kBackward && m.last < tf && tf - m.last <= L.scope_tokens &&
                         !blocked(m.last + 1, tf);
        const bool bwd = t.dir != Dir::kForward && m.first > tl && m.first - tl <= L.scope_tokens &&
                         !blocked(tl + 1, m.first);
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
    w.barrier.assign(w.tokens.size(), 0);
    for (std::size_t i = 0; i < w.tokens.size(); ++i)
      if (w.tokens[i].type == TokType::kClauseBreak) w.barrier[i] = 1;
    for (const auto& m : w.matches)
      if (tag_of(m, Cat::kTerminate)) w.barrier[static_cast<std::size_t>(m.first)] = 1;
  }

  void match_all() {
    for (auto& s : w.sentences) {
      s.match_first = static_cast<std::int32_t>(w.matches.size());
      L.match(w.tokens, static_cast<std::size_t>(s.first), static_cast<std::size_t>(s.last),
              w.matches);
      s.match_last = static_cast<std::int32_t>(w.matches.size());
    }
    mark_barriers();
  }

 private:
  void detect_header(std::size_t ls, std::size_t le, SectionKind& kind, std::size_t& body) const {
    const std::string& lower = w.lower;
    std::size_t a = ls;
    while (a < le && (lower[a] == ' ' || lower[a] == '\t')) ++a;
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
    if (colon != std::string::npos && header_kind(trimmed(a, colon), kind)) {
      body = after;
      return;
    }
    if (le - a <= 60 && header_kind(trimmed(a, le), kind)) body = le;
  }

  // A known header, also with two adjacent letters swapped ("FNIDINGS").
  bool header_kind(std::string h, SectionKind& kind) const {
    auto it = L.headers.find(h);
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

  void add_sentences(std::size_t from, SectionKind kind) {
    std::size_t start = from;
    for (std::size_t i = from; i <= w.tokens.size(); ++i) {
      if (i < w.tokens.size() && w.tokens[i].type != TokType::kSentenceBreak) continue;
      if (i > start)
        w.sentences.push_back(
            {static_cast<std::int32_t>(start), static_cast<std::int32_t>(i), kind});
      start = i + 1;
    }
  }
};

struct SizeHit {
  double mm = 0;
  std::int32_t first = 0, last = 0;
};

bool current(SectionKind k) {
  return k == SectionKind::kFindings || k == SectionKind::kImpression ||
         k == SectionKind::kPathology;
}

template <typename T>
void set_field(Field<T>& f, T v, double c, Span s) {
  if (!f.value) f.set(std::move(v), c, s);
}

std::string paris_morphology(const std::string& paris) {
  if (paris == "0-Ip") return "pedunculated";
  if (paris == "0-Isp" || paris == "0-Is") return "sessile";
  return "flat";
}

}  // namespace

RulesLabeller::RulesLabeller(std::vector<std::shared_ptr<const Lexicon>> lexicons,
                             std::string language)
    : lexicons_(std::move(lexicons)), language_(std::move(language)) {
  ENDOKED_CHECK(!lexicons_.empty(), "rules labeller: no lexicon given");
  if (language_ != "auto") {
    bool found = false;
    for (const auto& l : lexicons_) found = found || l->language == language_;
    ENDOKED_CHECK(found, "rules labeller: language '", language_, "' has no lexicon");
  }
}

RulesLabeller::~RulesLabeller() = default;

std::string RulesLabeller::version() const {
  std::string v = "rules-1/";
  for (std::size_t i = 0; i < lexicons_.size(); ++i) v += (i ? "," : "") + lexicons_[i]->version;
  return v;
}

const Lexicon& RulesLabeller::pick(const std::string& report) const {
  std::string want = language_;
  if (want == "auto") {
    int cjk = 0;
    const std::size_t n = std::min<std::size_t>(report.size(), 4096);
    for (std::size_t i = 0; i < n; ++i)
      if (is_cjk_lead(report, i)) ++cjk;
    want = cjk >= lexicons_.front()->aggregation.cjk_min ? "zh" : "en";
  }
  for (const auto& l : lexicons_)
    if (l->language == want) return *l;
  return *lexicons_.front();
}

MentionState RulesLabeller::context(const std::string& sentence, Span target,
                                    const std::string& language) const {
  const Lexicon* lex = nullptr;
  for (const auto& l : lexicons_)
    if (l->language == language) lex = l.get();
  ENDOKED_CHECK(lex, "rules labeller: language '", language, "' has no lexicon");
  thread_local Work w;
  Analysis a(*lex, sentence, w);
  a.split(false);
  // The caller chose the sentence: it is one unit here, and breaks inside it act as barriers.
  Sentence all{0, static_cast<std::int32_t>(w.tokens.size()), SectionKind::kFindings};
  w.sentences.assign(1, all);
  w.matches.clear();
  a.match_all();
  std::int32_t tf = -1, tl = -1;
  for (std::size_t i = 0; i < w.tokens.size(); ++i)
    if (w.tokens[i].end > target.begin && w.tokens[i].begin < target.end) {
      if (tf < 0) tf = static_cast<std::int32_t>(i);
      tl = static_cast<std::int32_t>(i);
    }
  if (tf < 0) return {};
  for (std::size_t i = 0; i < w.tokens.size(); ++i)
    if (w.tokens[i].type == TokType::kSentenceBreak) w.barrier[i] = 1;
  return a.state_of(w.sentences[0], tf, tl);
}

namespace {

// One report's labelling: sentence by sentence (mentions, exam quality, polyp descriptions,
// pathology entries), then the report-level decision. Holds the evidence gathered so far.
class Labelling {
 public:
  Labelling(const Lexicon& lex, Analysis& analysis, Work& work, ExamLabels& labels)
      : L(lex),
        agg(lex.aggregation),
        a(analysis),
        w(work),
        out(labels),
        polyps(labels.polyps),
        fc(lex.aggregation.conf_field) {}

  void run() {
    for (const auto& s : w.sentences)
      if (s.kind != SectionKind::kIgnore) sentence(s);
    decide();
  }

 private:
  using It = std::vector<Match>::const_iterator;

  void sentence(const Sentence& s) {
    const It mb = w.matches.begin() + s.match_first, me = w.matches.begin() + s.match_last;
    const Mention* first_affirmed = read_mentions(s, mb, me, mentions_);
    quality(s, mb, me);
    if (!current(s.kind)) return;
    // Attributes of this sentence, nearest to the first affirmed mention.
    const std::int32_t anchor = first_affirmed ? first_affirmed->first : s.first;
    find_sizes(s, mb, me, sizes_);
    const std::vector<SizeHit>& sizes = sizes_;
    const int quantity = find_quantity(s, mb, me, first_affirmed != nullptr, anchor, sizes);
    if (s.kind == SectionKind::kFindings) {
      findings(s, mb, me, first_affirmed != nullptr, anchor, sizes, quantity);
    } else if (s.kind == SectionKind::kImpression) {
      if (first_affirmed && quantity > 0) stated = std::max<std::int64_t>(stated, quantity);
      if (first_affirmed && quantity < 0) multiple = true;
    } else if (s.kind == SectionKind::kPathology) {
      pathology(s, mb, me, nearest(mb, me, Cat::kSegment, anchor));
    }
  }

  const Match* nearest(It mb, It me, Cat c, std::int32_t anchor) const {
    const Match* best = nullptr;
    for (auto it = mb; it != me; ++it)
      if (a.tag_of(*it, c) &&
          (!best || std::abs(it->first - anchor) < std::abs(best->first - anchor)))
        best = &*it;
    return best;
  }

  // Target mentions with their ConText states; returns the first affirmed polyp mention.
  const Mention* read_mentions(const Sentence& s, It mb, It me, std::vector<Mention>& mentions) {
    mentions.clear();
    for (auto it = mb; it != me; ++it) {
      const Tag* t = a.tag_of(*it, Cat::kTarget);
      const Tag* h = a.tag_of(*it, Cat::kHistology);
      if (!t && !h) continue;
      mentions.push_back(
          {it->first, it->last, t ? t->value : "histology", a.state_of(s, it->first, it->last)});
    }
    const Mention* first_affirmed = nullptr;
    for (const auto& m : mentions) {
      const Span sp = a.span(m.first, m.last);
      if (m.state.historical && !m.state.family) {
        set_field(out.history_of_polypectomy, true, fc, sp);
        continue;
      }
      if (m.state.family || m.state.hypothetical || !current(s.kind)) continue;
      if (m.state.negated) {
        negated.push_back(sp);
        for (const auto& t : m.state.triggers) negated.push_back(t);
      } else if (m.state.possible) {
        possible.push_back(sp);
        for (const auto& t : m.state.triggers) possible.push_back(t);
      } else {
        affirmed.push_back(sp);
        affirmed_kinds.push_back(s.kind);
        if (!first_affirmed && m.what != "polypectomy") first_affirmed = &m;
      }
    }
    return first_affirmed;
  }

  // Bowel preparation, caecal intubation and normal-exam phrases.
  void quality(const Sentence& s, It mb, It me) {
    bool prep_term = s.kind == SectionKind::kPreparation;
    for (auto it = mb; it != me; ++it) {
      if (a.tag_of(*it, Cat::kPrepTerm)) prep_term = true;
      if (current(s.kind) && a.tag_of(*it, Cat::kNormalExam)) normal.push_back(a.span(*it));
      if (a.tag_of(*it, Cat::kCaecumNo)) {
        if (!out.caecum_reached.value || *out.caecum_reached.value) {
          out.caecum_reached = {};
          out.caecum_reached.set(false, fc, a.span(*it));
        }
      } else if (a.tag_of(*it, Cat::kCaecumYes)) {
        set_field(out.caecum_reached, true, fc, a.span(*it));
      }
    }
    if (prep_term) {
      bool voted = false;
      for (auto it = mb; it != me && !voted; ++it)
        if (const Tag* q = a.tag_of(*it, Cat::kPrepQuality)) {
          prep_votes.emplace_back(q->value, a.span(*it));
          voted = true;
        }
      for (auto it = mb; it != me && !voted; ++it) {
        if (!a.tag_of(*it, Cat::kBbps)) continue;
        for (std::int32_t k = it->last + 1; k < std::min(s.last, it->last + 4) && !voted; ++k) {
          const Token& t = w.tokens[static_cast<std::size_t>(k)];
          if (t.type != TokType::kNumber) continue;
          for (const auto& [min, value] : agg.bbps_min)
            if (t.number >= min) {
              prep_votes.emplace_back(value, a.span(it->first, k));
              voted = true;
              break;
            }
        }
      }
    }
  }

  // "6 mm", "1.5 cm", ranges "8-9 mm" and products "10 x 8 mm" (the largest number counts).
  void find_sizes(const Sentence& s, It mb, It me, std::vector<SizeHit>& sizes) const {
    sizes.clear();
    for (auto it = mb; it != me; ++it) {
      const Tag* u = a.tag_of(*it, Cat::kSizeUnit);
      if (!u) continue;
      SizeHit h;
      h.last = it->last;
      std::int32_t k = it->first - 1;
      double best = -1;
      while (k >= s.first) {
        const Token& t = w.tokens[static_cast<std::size_t>(k)];
        if (t.type != TokType::kNumber) break;
        best = std::max(best, t.number);
        h.first = k;
        // A range or a product: "8-9 mm", "10 x 8 mm", "2 to 3 cm".
        if (k - 1 < s.first) break;
        const Token& sep = w.tokens[static_cast<std::size_t>(k - 1)];
        const std::string_view st = std::string_view(w.lower).substr(
            static_cast<std::size_t>(sep.begin), static_cast<std::size_t>(sep.end - sep.begin));
        if (st != "-" && st != "x" && st != "to" && st != "*" && st != "\xC3\x97" && st != "~")
          break;
        k -= 2;
      }
      if (best < 0) continue;
      h.mm = best * u->number;
      sizes.push_back(h);
    }
  }

  // A number right before the target ("two 5 mm polyps"), number + classifier anywhere
  // ("两枚"), or −1 for "multiple"; 0 when none.
  int find_quantity(const Sentence& s, It mb, It me, bool affirmed, std::int32_t anchor,
                    const std::vector<SizeHit>& sizes) const {
    int quantity = 0;
    auto number_at = [&](std::int32_t k) -> double {
      const Token& t = w.tokens[static_cast<std::size_t>(k)];
      if (t.type == TokType::kNumber) return t.number;
      for (auto it = mb; it != me; ++it)
        if (it->first == k && it->last == k)
          if (const Tag* n = a.tag_of(*it, Cat::kNumber)) return n->number;
      return -1;
    };
    for (auto it = mb; it != me; ++it) {
      if (a.tag_of(*it, Cat::kMultiple) &&
          (!affirmed || L.language == "zh" || (it->last < anchor && anchor - it->last <= 4))) {
        if (!quantity) quantity = -1;
      }
      if (a.tag_of(*it, Cat::kClassifier) && it->first > s.first) {
        const double n = number_at(it->first - 1);
        if (n > 0 && n <= 50) quantity = static_cast<int>(n);
      }
    }
    if (affirmed && quantity <= 0) {
      for (std::int32_t k = anchor - 1; k >= std::max(s.first, anchor - 4); --k) {
        const Token& t = w.tokens[static_cast<std::size_t>(k)];
        const bool unit_follows = std::any_of(sizes.begin(), sizes.end(), [&](const SizeHit& h) {
          return k >= h.first && k <= h.last;
        });
        if (unit_follows) continue;
        const double n = number_at(k);
        if (n >= 1 && n <= 20 &&
            (t.type != TokType::kNumber || k == s.first ||
             w.lower[static_cast<std::size_t>(w.tokens[static_cast<std::size_t>(k - 1)].begin)] !=
                 '(')) {
          quantity = static_cast<int>(n);
          break;
        }
      }
    }

    return quantity;
  }

  // A findings sentence describes a new polyp, states a count, or adds a removal to the last.
  void findings(const Sentence& s, It mb, It me, bool affirmed, std::int32_t anchor,
                const std::vector<SizeHit>& sizes, int quantity) {
    const Match* seg = nearest(mb, me, Cat::kSegment, anchor);
    const Match* morph = nearest(mb, me, Cat::kMorphology, anchor);
    const Match* paris = nearest(mb, me, Cat::kParis, anchor);
    const Match* sword = nearest(mb, me, Cat::kSizeWord, anchor);
    // The most specific removal: a named method over a bare "removed"/"polypectomy".
    const Match* removal = nullptr;
    for (auto it = mb; it != me; ++it)
      if (const Tag* t = a.tag_of(*it, Cat::kRemoval))
        if (!removal || (a.tag_of(*removal, Cat::kRemoval)->value == "polypectomy" &&
                         t->value != "polypectomy"))
          removal = &*it;
    const SizeHit* size = nullptr;
    for (const auto& h : sizes)
      if (!size || std::abs(h.first - anchor) < std::abs(size->first - anchor)) size = &h;

    const bool describes = affirmed && (seg || size || sword || morph || paris);
    if (describes) {
      PolypLabel p;
      p.evidence.push_back(a.sentence_span(s));
      if (seg) p.segment.set(a.tag_of(*seg, Cat::kSegment)->value, fc, a.span(*seg));
      if (size) {
        p.size_mm.set(size->mm, fc, a.span(size->first, size->last));
        p.size_class.set(size_class(size->mm), fc, a.span(size->first, size->last));
      } else if (sword) {
        p.size_class.set(a.tag_of(*sword, Cat::kSizeWord)->value, fc, a.span(*sword));
      }
      if (paris) p.paris.set(a.tag_of(*paris, Cat::kParis)->value, fc, a.span(*paris));
      if (morph)
        p.morphology.set(a.tag_of(*morph, Cat::kMorphology)->value, fc, a.span(*morph));
      else if (paris)
        p.morphology.set(paris_morphology(*p.paris.value), fc, a.span(*paris));
      if (removal) p.removal.set(a.tag_of(*removal, Cat::kRemoval)->value, fc, a.span(*removal));
      p.quantity = quantity ? quantity : 1;
      polyps.push_back(std::move(p));
    } else {
      if (affirmed && quantity > 0) stated = std::max<std::int64_t>(stated, quantity);
      if (affirmed && quantity < 0) multiple = true;
      if (removal && !polyps.empty() && !polyps.back().removal.value) {
        polyps.back().removal.set(a.tag_of(*removal, Cat::kRemoval)->value, fc, a.span(*removal));
        polyps.back().evidence.push_back(a.sentence_span(s));
      }
    }
  }

  // A pathology entry: its histology and dysplasia go to the polyp it names.
  // An entry whose site and diagnosis stand in two sentences ("C. SIGMOID COLON, POLYP:" then
  // "Tubular adenoma") takes the site of the sentence just before it.
  void pathology(const Sentence& s, It mb, It me, const Match* seg) {
    const Match* hist = nullptr;
    for (auto it = mb; it != me && !hist; ++it)
      if (a.tag_of(*it, Cat::kHistology) && !a.state_of(s, it->first, it->last).negated)
        hist = &*it;
    const Match* site_before = site_only_;
    site_only_ = !hist ? seg : nullptr;
    if (!hist) return;
    if (!seg) seg = site_before;
    const Match* dys = nullptr;
    for (auto it = mb; it != me && !dys; ++it)
      if (a.tag_of(*it, Cat::kDysplasia) && !a.state_of(s, it->first, it->last).negated) dys = &*it;
    // "(k)" or "k)" at the start of the entry.
    int index = 0;
    for (std::int32_t k = s.first; k < std::min(s.last, s.first + 2); ++k) {
      const Token& t = w.tokens[static_cast<std::size_t>(k)];
      if (t.type == TokType::kNumber && k + 1 < s.last &&
          w.lower[static_cast<std::size_t>(w.tokens[static_cast<std::size_t>(k + 1)].begin)] ==
              ')') {
        index = static_cast<int>(t.number);
        break;
      }
    }
    const std::string seg_value = seg ? a.tag_of(*seg, Cat::kSegment)->value : std::string();
    PolypLabel* target = nullptr;
    if (index >= 1 && index <= static_cast<int>(polyps.size()) &&
        !polyps[static_cast<std::size_t>(index - 1)].histology.value)
      target = &polyps[static_cast<std::size_t>(index - 1)];
    // By segment: prefer a polyp that was removed or biopsied (tissue reached pathology).
    for (int pass = 0; pass < 2 && !target; ++pass)
      for (auto& p : polyps)
        if (!target && !seg_value.empty() && !p.histology.value && p.segment.value &&
            *p.segment.value == seg_value &&
            (pass == 1 || (p.removal.value && *p.removal.value != "not_removed")))
          target = &p;
    if (!target) {
      polyps.emplace_back();
      target = &polyps.back();
      if (seg) target->segment.set(seg_value, fc, a.span(*seg));
    }
    const std::string hv = a.tag_of(*hist, Cat::kHistology)->value;
    target->histology.set(hv, fc, a.span(*hist));
    if (auto g = pathology_group(hv)) target->group.set(*g, fc, a.span(*hist));
    if (dys) target->dysplasia.set(a.tag_of(*dys, Cat::kDysplasia)->value, fc, a.span(*dys));
    target->evidence.push_back(a.sentence_span(s));
  }

  // Report-level decision.
  void decide() {
    std::int64_t described = 0;
    for (const auto& p : polyps) {
      if (p.quantity > 0) described += p.quantity;
      if (p.quantity < 0) multiple = true, described += 1;
    }
    const int kinds = [&] {
      std::vector<SectionKind> k = affirmed_kinds;
      std::sort(k.begin(), k.end());
      return static_cast<int>(std::unique(k.begin(), k.end()) - k.begin());
    }();
    auto& present = out.polyp_present;
    if (static_cast<int>(affirmed.size()) >= agg.min_affirmed) {
      present.value = "positive";
      present.confidence = kinds >= 2 ? agg.conf_positive_confirmed : agg.conf_positive;
      if (!possible.empty()) present.confidence -= agg.conf_conflict_penalty;
      present.evidence = affirmed;
      const std::int64_t n = std::max(described, stated);
      out.polyp_count.value = std::max<std::int64_t>(n, multiple ? 2 : 1);
      out.count_exact = !(multiple && stated == 0) && n > 0;
      out.polyp_count.confidence = out.count_exact ? fc : fc / 2;
      for (const auto& p : polyps)
        out.polyp_count.evidence.insert(out.polyp_count.evidence.end(), p.evidence.begin(),
                                        p.evidence.end());
    } else {
      polyps.clear();
      if (!possible.empty()) {
        present.value = "uncertain";
        present.confidence = agg.conf_uncertain;
        present.evidence = possible;
      } else if (!negated.empty() || !normal.empty()) {
        present.value = "negative";
        present.confidence = negated.empty() ? agg.conf_negative_normal_only : agg.conf_negative;
        present.evidence = negated;
        present.evidence.insert(present.evidence.end(), normal.begin(), normal.end());
        out.polyp_count.value = 0;
        out.polyp_count.confidence = present.confidence;
      } else {
        present.value = "not_mentioned";
        present.confidence = agg.conf_not_mentioned;
      }
    }
    if (!out.history_of_polypectomy.value) {
      out.history_of_polypectomy.value = false;
      out.history_of_polypectomy.confidence = agg.conf_not_mentioned;
    }
    if (!prep_votes.empty()) {
      std::map<std::string, int> n;
      for (const auto& v : prep_votes) ++n[v.first];
      std::string best = prep_votes.front().first;
      for (const auto& v : prep_votes)
        if (n[v.first] > n[best]) best = v.first;
      out.bowel_prep.value = best;
      out.bowel_prep.confidence =
          n.size() == 1 ? fc : fc * n[best] / static_cast<double>(prep_votes.size());
      for (const auto& v : prep_votes)
        if (v.first == best) out.bowel_prep.evidence.push_back(v.second);
    }
  }

  const Lexicon& L;
  const Aggregation& agg;
  Analysis& a;
  Work& w;
  ExamLabels& out;
  std::vector<PolypLabel>& polyps;
  const double fc;
  std::vector<Span> affirmed, possible, negated, normal;
  std::vector<SectionKind> affirmed_kinds;
  std::vector<std::pair<std::string, Span>> prep_votes;
  std::int64_t stated = 0;
  bool multiple = false;
  // The last pathology sentence's site, when it had no diagnosis.
  const Match* site_only_ = nullptr;
  std::vector<Mention> mentions_;  // per sentence, reused
  std::vector<SizeHit> sizes_;
};

}  // namespace

ExamLabels RulesLabeller::label(const std::string& report) const {
  const Lexicon& L = pick(report);
  thread_local Work w;
  Analysis a(L, report, w);
  a.split();
  a.match_all();
  ExamLabels out;
  out.labeller = "rules";
  out.version = "rules-1/" + L.version;
  out.language = L.language;
  Labelling(L, a, w, out).run();
  return out;
}

}  // namespace endoked::report
