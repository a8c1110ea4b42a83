// The rule-based report labeller: sections → sentences → phrase matches → ConText states →
// polyp descriptions → report-level labels. See endoked/report/rules.h.
#include "endoked/report/rules.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string_view>

#include "analysis.h"
#include "endoked/core/error.h"
#include "endoked/core/text.h"
#include "lexicon.h"

namespace endoked::report {
namespace {

using detail::Analysis;
using detail::is_cjk_lead;
using detail::Sentence;
using detail::Work;

struct Mention {
  std::int32_t first = 0, last = 0;  // tokens, inclusive
  std::string what;                  // polyp | polypectomy | histology
  MentionState state;
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
    const std::size_t before = polyps.size();
    // The sentence's sizes, read once (sentence_body and remember_unnamed use them).
    find_sizes(s, w.matches.begin() + s.match_first, w.matches.begin() + s.match_last, sizes_);
    found_sizes_ = sizes_.size();
    sentence_body(s);
    if (polyps.size() == before) remember_unnamed(s);
    if (polyps.size() > before) last_batch_ = before;
    // "以上息肉均予冷圈套切除。", "均予冷圈套切除。": a sentence of its own that names no site
    // removes every polyp that still lacks a removal.
    if (s.kind == SectionKind::kFindings && polyps.size() == before && !polyps.empty()) {
      const std::string_view said = text_of(s);
      const It mb = w.matches.begin() + s.match_first, me = w.matches.begin() + s.match_last;
      if ((said.find("\xE5\x9D\x87") != std::string_view::npos ||               // 均
           said.find("\xE5\x85\xA8\xE9\x83\xA8") != std::string_view::npos) &&  // 全部
          std::none_of(mb, me, [&](const Match& m) { return a.tag_of(m, Cat::kSegment); }))
        if (const Match* r = pick_removal(mb, me))
          for (auto& p : polyps)
            if (!p.removal.value) p.removal.set(a.tag_of(*r, Cat::kRemoval)->value, fc, a.span(*r));
    }
    for (std::size_t i = before; i < polyps.size(); ++i)
      if (!polyps[i].segment.value && heading_segment_.value) polyps[i].segment = heading_segment_;
    // The findings item a polyp was described in ("2. Transverse colon: …"), which a numbered
    // pathology result ("(2) tubular adenoma") names.
    item_of_.resize(polyps.size(), 0);
    for (std::size_t i = before; i < polyps.size(); ++i) item_of_[i] = item_no_;
    origin_of_.resize(polyps.size(), -1);
    for (std::size_t i = before; i < polyps.size(); ++i) origin_of_[i] = s.origin;
    // "升结肠见一枚息肉，降结肠见一枚息肉，均予冷圈套切除": the removal of every clause of the
    // sentence.
    if (s.origin >= 0 && !polyps.empty() && polyps.back().removal.value &&
        origin_of_.back() == s.origin) {
      const std::string_view said = text_of(s);
      if (said.find("\xE5\x9D\x87") != std::string_view::npos ||  // 均
          said.find("\xE9\x83\xBD") != std::string_view::npos)    // 都
        for (std::size_t i = 0; i + 1 < polyps.size(); ++i)
          if (origin_of_[i] == s.origin && !polyps[i].removal.value)
            polyps[i].removal = polyps.back().removal;
    }
  }

  // The number of the findings item that sentence `s` belongs to, or 0.
  void track_item(const Sentence& s) {
    const auto begin = static_cast<std::size_t>(w.tokens[static_cast<std::size_t>(s.first)].begin);
    const bool new_line = w.lower.find('\n', last_end_) < begin;
    last_end_ = static_cast<std::size_t>(w.tokens[static_cast<std::size_t>(s.last - 1)].end);
    if (s.kind != SectionKind::kFindings) {
      item_no_ = 0;
      return;
    }
    if (starts_item(s)) {
      const auto& t0 = w.tokens[static_cast<std::size_t>(s.first)];
      const auto& t1 = w.tokens[static_cast<std::size_t>(s.first + 1)];
      const Token& n = t0.type == TokType::kNumber ? t0 : t1;
      item_no_ = n.type == TokType::kNumber && n.number == std::floor(n.number)
                     ? static_cast<int>(n.number)
                     : 0;
    } else if (new_line) {
      item_no_ = 0;
    }
  }

  void sentence_body(const Sentence& s) {
    track_item(s);
    // "Right colon:" alone on its line heads the polyps listed under it.
    if (s.kind != SectionKind::kFindings) heading_segment_ = {};
    if (s.kind == SectionKind::kFindings && s.match_last - s.match_first == 1 &&
        s.last - s.first >= 2) {
      const Match& m = w.matches[static_cast<std::size_t>(s.match_first)];
      const std::string_view c = token_text(s.last - 1);
      if (m.first == s.first && m.last == s.last - 2 && a.tag_of(m, Cat::kSegment) &&
          (c == ":" || c == "\xEF\xBC\x9A")) {
        heading_segment_ = {};
        heading_segment_.set(a.tag_of(m, Cat::kSegment)->value, fc, a.span(m));
        return;
      }
    }
    const It mb = w.matches.begin() + s.match_first, me = w.matches.begin() + s.match_last;
    const Snapshot now{affirmed.size(), possible.size(), polyps.size(), s.kind, true};
    const Mention* first_affirmed = read_mentions(s, mb, me, mentions_);
    // Items under a head line ("Polyps:" then "(1) caecum 3mm sessile - CSP") are polyps
    // although they do not say so.
    const bool item = starts_item(s);
    // An item with a site and a size is a polyp too ("1. Cecum, 5 mm, 0-Is, cold snare - A").
    table_sizes(s);  // (adds to the sizes sentence() read, when they are none)
    const bool site_or_length = std::any_of(mb, me, [&](const Match& m) {
      return a.tag_of(m, Cat::kSegment) || a.tag_of(m, Cat::kSizeUnit);
    });
    const bool sited_and_sized =
        std::any_of(mb, me,
                    [&](const Match& m) { return a.tag_of(m, Cat::kSegment) != nullptr; }) &&
        !sizes_.empty() && std::none_of(mb, me, [&](const Match& m) {
          return a.tag_of(m, Cat::kNonPolyp) || a.tag_of(m, Cat::kIncidental);
        });
    const bool unnamed = std::none_of(mentions_.begin(), mentions_.end(), [](const Mention& m) {
      return m.what == "polyp" || m.what == "generic" || m.what == "histology";
    });
    // "Two polyps were found. The first, 6 mm, was in the ascending colon…".
    const bool ordinal = s.last - s.first >= 3 && (stated >= 2 || vague_bound >= 2) &&
                         (token_text(s.first) == "the" || token_text(s.first) == "one") &&
                         L.ordinals.count(std::string(token_text(s.first + 1))) && site_or_length;
    // "Asc: 0-Is 8mm -> CSP": a line led by a segment and a colon, with a size.
    const bool segment_led = s.last - s.first >= 3 && mb != me && mb->first == s.first &&
                             a.tag_of(*mb, Cat::kSegment) && mb->last + 1 < s.last &&
                             token_text(mb->last + 1) == ":";
    // ("- Left colon: moderate diverticulosis." under "Findings:" is no polyp; a surface that is
    // 充血 or eroded still describes one.)
    const bool other_finding = std::any_of(
        mb, me, [&](const Match& m) { return a.tag_of(m, Cat::kIncidental) != nullptr; });
    const bool listed =
        !first_affirmed && unnamed && !other_finding && s.kind == SectionKind::kFindings &&
        ((item && (list_head_ || sited_and_sized)) || (segment_led && sited_and_sized) || ordinal);
    // A block: "Polyp 1" then "Site: Sigmoid colon", "Size: 12 mm", "Removal: Hot snare".
    // "Site: …", "部位：…": a key of a word (or two Chinese characters) and a colon.
    auto colon_at = [&](std::int32_t k) {
      return k < s.last && (token_text(k) == ":" || token_text(k) == "\xEF\xBC\x9A");
    };
    // ("Morphology (Paris): 0-IIa, LST-NG": a key with its qualifier in parentheses.)
    auto qualified_key = [&] {
      if (s.last - s.first < 5 ||
          w.tokens[static_cast<std::size_t>(s.first)].type != TokType::kWord ||
          token_text(s.first + 1) != "(")
        return false;
      for (std::int32_t k = s.first + 2; k < std::min(s.last - 1, s.first + 6); ++k)
        if (token_text(k) == ")") return colon_at(k + 1);
      return false;
    };
    const bool field = s.last - s.first >= 3 &&
                       ((w.tokens[static_cast<std::size_t>(s.first)].type == TokType::kWord &&
                         colon_at(s.first + 1)) ||
                        qualified_key() ||
                        (w.tokens[static_cast<std::size_t>(s.first)].type == TokType::kOther &&
                         w.tokens[static_cast<std::size_t>(s.first + 1)].type == TokType::kOther &&
                         colon_at(s.first + 2)));
    const bool names_target = std::any_of(mentions_.begin(), mentions_.end(), [](const Mention& m) {
      return m.what == "polyp" || m.what == "generic";
    });
    // (A polyp word in a field's value describes the block's polyp: "Morphology (Paris): 0-IIa,
    // LST-NG"; one that is the key opens a polyp of its own.)
    const bool key_names_target =
        std::any_of(mentions_.begin(), mentions_.end(), [&](const Mention& m) {
          return (m.what == "polyp" || m.what == "generic") && m.first == s.first;
        });
    if (block_open_ && field && (!names_target || (block_ >= 0 && !key_names_target)) &&
        s.kind == SectionKind::kFindings) {
      quality(s, mb, me);
      fill_block(s, mb, me);
      return;
    }
    block_open_ = first_affirmed && s.kind == SectionKind::kFindings && s.last - s.first <= 4 &&
                  !site_or_length;
    block_ = -1;
    if (!item) list_head_ = false;
    if (first_affirmed && s.kind == SectionKind::kFindings && !site_or_length) list_head_ = true;
    // "…this was a normal fold": a resolved sentence that names no polyp itself speaks of the
    // lesion of the sentence before (same section).
    const bool resolved = std::any_of(mb, me, [&](const Match& m) { return resolves(s, m); });
    const bool names_polyp = std::any_of(mentions_.begin(), mentions_.end(),
                                         [](const Mention& m) { return m.what != "polypectomy"; });
    if (resolved && !names_polyp && current(s.kind) && before_.valid && before_.kind == s.kind)
      undo_since(before_);
    resolved_any_ = resolved_any_ || (resolved && current(s.kind));
    before_ = now;
    quality(s, mb, me);
    if (!current(s.kind)) return;
    // Attributes of this sentence, nearest to the first affirmed mention.
    const std::int32_t anchor =
        first_affirmed ? first_affirmed->first : (first_possible_ >= 0 ? first_possible_ : s.first);
    if (listed) {
      affirmed.push_back(a.sentence_span(s));
      affirmed_kinds.push_back(s.kind);
      findings(s, mb, me, true, anchor, sizes_, Quantity{1, 0});
      return;
    }
    const std::vector<SizeHit>& sizes = sizes_;
    const Quantity quantity =
        find_quantity(s, mb, me, first_affirmed != nullptr || first_possible_ >= 0, anchor, sizes);
    // "The histology shows that the ascending colon polyp was an SSL, the descending polyp a
    // TA…": a findings sentence that quotes the pathology and describes nothing is one.
    const bool quotes_pathology =
        (s.kind == SectionKind::kFindings || s.kind == SectionKind::kImpression) && sizes.empty() &&
        std::any_of(mb, me,
                    [&](const Match& m) { return a.tag_of(m, Cat::kPathInline) != nullptr; }) &&
        std::any_of(mb, me,
                    [&](const Match& m) { return a.tag_of(m, Cat::kHistology) != nullptr; }) &&
        // … of this exam ("2022年于外院行息肉EMR术（病理：管状腺瘤）" is history)
        std::any_of(mentions_.begin(), mentions_.end(), [](const Mention& m) {
          return m.what != "generic" && !m.state.historical && !m.state.family &&
                 !m.state.hypothetical;
        });
    if (quotes_pathology) {
      pathology(s, mb, me);
    } else if (s.kind == SectionKind::kFindings) {
      findings(s, mb, me, first_affirmed != nullptr, anchor, sizes, quantity);
      // "…which I removed (path later showed TA, low grade)": the result of the polyp just read.
      if (inline_pathology_ && !polyps.empty() && !polyps.back().histology.value) {
        PolypLabel& p = polyps.back();
        const std::string hv = a.tag_of(*inline_pathology_, Cat::kHistology)->value;
        p.histology.set(hv, fc, a.span(*inline_pathology_));
        if (auto g = pathology_group(hv)) p.group.set(*g, fc, a.span(*inline_pathology_));
      }
    } else if (s.kind == SectionKind::kImpression) {
      if (first_affirmed) count_said(quantity);
      // "Three polyps removed by snare polypectomy", "3 polyps removed with cold snare": how
      // every polyp was removed, when the findings did not say.
      if (first_affirmed && !site(mb, me, anchor) && !polyps.empty() &&
          (quantity.n == static_cast<int>(polyps.size()) ||
           (quantity.n == 0 && token_text(first_affirmed->last).back() == 's')))
        if (const Match* r = pick_removal(mb, me))
          for (auto& p : polyps)
            if (!p.removal.value)
              p.removal.set(a.tag_of(*r, Cat::kRemoval)->value, fc / 2, a.span(*r));
      if (const Match* seg = first_affirmed ? site(mb, me, anchor) : nullptr) {
        impression_segments_.push_back(a.tag_of(*seg, Cat::kSegment)->value);
        // "One 6 mm polyp in the descending colon, removed with a cold snare": how the polyp of
        // that segment was removed, when the findings did not say.
        if (const Match* r = pick_removal(mb, me))
          for (auto& p : polyps)
            if (p.segment.value == impression_segments_.back() && !p.removal.value) {
              p.removal.set(a.tag_of(*r, Cat::kRemoval)->value, fc, a.span(*r));
              break;
            }
      }
      // "诊断：升结肠息肉（0.4公分）、乙状结肠息肉（0.7公分）", "Impression: 6 mm sigmoid polyp":
      // the size of the one polyp of that segment the findings left unsized.
      if (first_affirmed) {
        std::vector<It> segs;
        for (auto it = mb; it != me; ++it)
          if (a.tag_of(*it, Cat::kSegment)) segs.push_back(it);
        for (std::size_t i = 0; i < segs.size(); ++i) {
          const SizeHit* h = nullptr;
          if (segs.size() == 1 && sizes.size() == 1) {
            h = &sizes[0];
          } else {
            const std::int32_t to = i + 1 < segs.size() ? segs[i + 1]->first : s.last;
            int n = 0;
            for (const auto& z : sizes)
              if (z.first > segs[i]->last && z.last < to) h = &z, ++n;
            if (n != 1) h = nullptr;
          }
          if (!h) continue;
          const std::string& v = a.tag_of(*segs[i], Cat::kSegment)->value;
          PolypLabel* only = nullptr;
          int same = 0;
          for (auto& p : polyps)
            if (p.segment.value == v) ++same, only = &p;
          if (same == 1 && !only->size_mm.value && only->quantity == 1) {
            set_size(*only, h->mm, fc / 2, a.span(h->first, h->last));
          }
        }
      }
      // "结肠息肉（已摘除）" with no findings: the impression's polyp stands in.
      if (first_affirmed && impression_polyps_.empty()) {
        PolypLabel p;
        p.evidence.push_back(a.sentence_span(s));
        if (const Match* seg = site(mb, me, anchor))
          p.segment.set(a.tag_of(*seg, Cat::kSegment)->value, fc, a.span(*seg));
        if (const Match* r = pick_removal(mb, me))
          p.removal.set(a.tag_of(*r, Cat::kRemoval)->value, fc, a.span(*r));
        if (!sizes.empty()) {
          set_size(p, sizes[0].mm, fc, a.span(sizes[0].first, sizes[0].last));
        }
        if (quantity.n > 1) p.quantity = quantity.n;
        if (quantity.n < 0) p.quantity = -1;
        impression_polyps_.push_back(std::move(p));
      }
    } else if (s.kind == SectionKind::kPathology) {
      pathology(s, mb, me);
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

  // A mention in another organ: an other-organ word ("stomach", "胃体") before it in its scope,
  // with no colon segment and no clause break between.
  bool elsewhere(It mb, It target) const {
    for (auto it = mb; it != target; ++it) {
      if (!a.tag_of(*it, Cat::kOtherOrgan) || target->first - it->last > L.scope_tokens) continue;
      bool apart = false;
      // (A colon site between them sets the target apart: "胃肠镜：结肠多发息肉".)
      for (auto jt = it + 1; jt != target && !apart; ++jt)
        apart = a.tag_of(*jt, Cat::kSegment) || a.tag_of(*jt, Cat::kGeneric);
      for (std::int32_t k = it->last + 1; k < target->first && !apart; ++k)
        apart = w.tokens[static_cast<std::size_t>(k)].type == TokType::kClauseBreak;
      if (!apart) return true;
    }
    return false;
  }

  // A four-digit year (1950–2035) at token k: "polypectomy in 2019", "2022年".
  // A full date ("2024-03-05", "2024年3月5日", "16/08/2024") stamps this exam or this stay, not
  // the past.
  bool year_at(std::int32_t k) const {
    const Token& t = w.tokens[static_cast<std::size_t>(k)];
    if (!(t.type == TokType::kNumber && t.end - t.begin == 4 && t.number >= 1950 &&
          t.number <= 2035))
      return false;
    const auto n = static_cast<std::int32_t>(w.tokens.size());
    const bool dated = k + 2 < n &&
                       w.tokens[static_cast<std::size_t>(k + 2)].type == TokType::kNumber &&
                       (token_text(k + 1) == "-" || token_text(k + 1) == "/" ||
                        token_text(k + 1) == "." || token_text(k + 1) == "\xE5\xB9\xB4" /* 年 */) &&
                       (token_text(k + 1) != "\xE5\xB9\xB4" ||
                        (k + 3 < n && token_text(k + 3) == "\xE6\x9C\x88" /* 月 */));
    // … or the year last: "16/08/2024", "05.02.2024".
    const bool year_last =
        k >= 2 && w.tokens[static_cast<std::size_t>(k - 2)].type == TokType::kNumber &&
        (token_text(k - 1) == "/" || token_text(k - 1) == "-" || token_text(k - 1) == ".");
    return !dated && !year_last;
  }

  // Target mentions with their ConText states; returns the first affirmed polyp mention.
  // Sentence-wide rules on top of ConText: a history_sentence phrase or a year makes every
  // later mention history (until "today", "本次" or a terminator); a resolved phrase ("was a
  // fold") negates every mention; a generic word ("lesion") is no polyp beside a non-polyp
  // finding and shares the doubt of a polyp doubted in its sentence.
  const Mention* read_mentions(const Sentence& s, It mb, It me, std::vector<Mention>& mentions) {
    mentions.clear();
    bool non_polyp = false, resolved = false;
    std::int32_t history_from = -1;
    bool disease = false;              // a non-polyp finding the exam may have been about
    std::vector<std::int32_t> others;  // where non-polyp findings are named
    for (auto it = mb; it != me; ++it) {
      disease =
          disease || (a.tag_of(*it, Cat::kNonPolyp) && !elsewhere(mb, it) &&  // not "胃炎伴糜烂"
                      !a.state_of(s, it->first, it->last).negated);           // nor "not bleeding"
      if (a.tag_of(*it, Cat::kNonPolyp) || a.tag_of(*it, Cat::kIncidental)) {
        non_polyp = true;
        others.push_back(it->first);
      }
      resolved = resolved || resolves(s, *it);
      if (history_from < 0 && a.tag_of(*it, Cat::kHistorySentence)) history_from = it->last;
    }
    // "因肠腔狭窄、进镜困难终止检查": what stopped the scope is not what the exam was about.
    if (disease && std::any_of(mb, me, [&](const Match& m) { return a.tag_of(m, Cat::kCaecumNo); }))
      disease = false;
    if (s.kind != SectionKind::kPathology)
      for (std::int32_t k = s.first; k < s.last && (history_from < 0 || k < history_from); ++k)
        if (year_at(k)) history_from = k;
    auto history_reaches = [&](std::int32_t first) {
      // A year also reaches back, as far as a ConText scope ("hx TA x2 removed 2018").
      if (history_from >= 0 && first < history_from && year_at(history_from) &&
          history_from - first <= L.scope_tokens) {
        for (std::int32_t k = first; k < history_from; ++k)
          if (w.barrier[static_cast<std::size_t>(k)]) return false;
        return true;
      }
      if (history_from < 0 || first <= history_from) return false;
      for (auto it = mb; it != me; ++it)
        if (it->first > history_from && it->first < first &&
            (a.tag_of(*it, Cat::kCurrent) || a.tag_of(*it, Cat::kTerminate)))
          return false;
      return true;
    };
    for (auto it = mb; it != me; ++it) {
      const Tag* t = a.tag_of(*it, Cat::kTarget);
      const Tag* h = a.tag_of(*it, Cat::kHistology);
      if (!t && !h) continue;
      // "angioectasia lesions", "多发溃疡……病变与正常黏膜分界清楚": the generic word names the
      // other finding (named before it in its scope, or right after it); "a growth, friable
      // and bleeding on touch" stays a growth.
      if (t && !h && t->value == "generic" && non_polyp &&
          std::any_of(others.begin(), others.end(), [&](std::int32_t o) {
            return (o < it->first && it->first - o <= L.scope_tokens) ||
                   (o > it->first && o - it->last <= 3);
          }))
        continue;
      if (!t && h->value == "other") continue;  // a lipoma, a carcinoid: not a polyp by itself
      if (elsewhere(mb, it)) continue;          // "胃体见多发息肉", "two gastric polyps"
      Mention m{it->first, it->last, t ? t->value : "histology",
                a.state_of(s, it->first, it->last)};
      if (history_reaches(it->first) || m.what == "history") m.state.historical = true;
      if (resolved) m.state.negated = true;
      // "乙状结肠息肉?", "Sigmoid polyp?": a question mark right after it doubts it.
      if (static_cast<std::size_t>(it->last + 1) < w.tokens.size()) {
        const std::string_view q = token_text(it->last + 1);
        if ((q == "?" || q == "\xEF\xBC\x9F") &&
            w.tokens[static_cast<std::size_t>(it->last + 1)].begin ==
                w.tokens[static_cast<std::size_t>(it->last)].end)
          m.state.possible = true;
      }
      mentions.push_back(std::move(m));
    }
    bool doubted = false, sure = false;
    for (const auto& m : mentions)
      if (m.what != "generic" && m.what != "polypectomy" && m.what != "history" &&
          !m.state.negated && !m.state.historical && !m.state.family && !m.state.hypothetical)
        (m.state.possible ? doubted : sure) = true;
    if (doubted && !sure)
      for (auto& m : mentions)
        if (m.what == "generic") m.state.possible = true;
    const Mention* first_affirmed = nullptr;
    sentence_possible_ = false;
    first_possible_ = -1;
    non_polyp_seen_ = non_polyp_seen_ || (disease && current(s.kind));
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
        sentence_possible_ = sentence_possible_ || m.what != "polypectomy";
        if (first_possible_ < 0 && m.what != "polypectomy") first_possible_ = m.first;
        possible.push_back(sp);
        for (const auto& t : m.state.triggers) possible.push_back(t);
      } else if (m.what != "polypectomy") {  // "polypectomy sites", "snare polypectomy": no
        affirmed.push_back(sp);              // polyp by themselves
        affirmed_kinds.push_back(s.kind);
        specific_affirmed_ = specific_affirmed_ || m.what != "generic";
        if (!first_affirmed) first_affirmed = &m;
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
      // (An indication's "after incomplete colonoscopy in 2023" is another exam.)
      const bool history = s.kind == SectionKind::kIndication;
      if (a.tag_of(*it, Cat::kLimited) && !history) limited_ = true;
      if (a.tag_of(*it, Cat::kCaecumNo) && !history) {
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
        // "BBPS R3 T3 L3 = 9", "BBPS (2+3+3) total 8": the total when it is written out.
        for (std::int32_t k = it->last + 1; k + 1 < std::min(s.last, it->last + 12) && !voted;
             ++k) {
          const std::string_view v = token_text(k);
          const Token& n = w.tokens[static_cast<std::size_t>(k + 1)];
          if ((v == "=" || v == "total") && n.type == TokType::kNumber && n.number <= 9)
            for (const auto& [min, value] : agg.bbps_min)
              if (n.number >= min) {
                prep_votes.emplace_back(value, a.span(it->first, k + 1));
                voted = true;
                break;
              }
        }
        for (std::int32_t k = it->last + 1; k < std::min(s.last, it->last + 4) && !voted; ++k) {
          const Token& t = w.tokens[static_cast<std::size_t>(k)];
          if (t.type != TokType::kNumber) continue;
          // "BBPS 8", or its three segment scores "3-3-2" / "2/3/3", which add up.
          double total = t.number;
          std::int32_t end = k;
          auto sep = [&](std::int32_t j) {
            if (j >= s.last) return false;
            const char c =
                w.lower[static_cast<std::size_t>(w.tokens[static_cast<std::size_t>(j)].begin)];
            return c == '-' || c == '/' || c == '+';
          };
          auto num = [&](std::int32_t j) {
            return j < s.last && w.tokens[static_cast<std::size_t>(j)].type == TokType::kNumber &&
                   w.tokens[static_cast<std::size_t>(j)].number <= 3;
          };
          if (t.number <= 3 && sep(k + 1) && num(k + 2) && sep(k + 3) && num(k + 4)) {
            total = t.number + w.tokens[static_cast<std::size_t>(k + 2)].number +
                    w.tokens[static_cast<std::size_t>(k + 4)].number;
            end = k + 4;
          }
          for (const auto& [min, value] : agg.bbps_min)
            if (total >= min) {
              prep_votes.emplace_back(value, a.span(it->first, end));
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
      bool ranged = false;  // read a range ("3-5") on the way back
      // "6-mm", "half-a-centimetre": a hyphen between the number and its unit.
      if (k - 1 >= s.first && token_text(k) == "-") --k;
      // "one and a half centimetres", "a centimetre and a half": half a unit more.
      double half = 0;
      if (k - 3 >= s.first && token_text(k) == "half" && token_text(k - 1) == "a" &&
          token_text(k - 2) == "and")
        half = 0.5, k -= 3;
      if (it->last + 3 < s.last && token_text(it->last + 1) == "and" &&
          token_text(it->last + 2) == "a" && token_text(it->last + 3) == "half") {
        half = 0.5;
        h.last = it->last + 3;
      }
      // "about a centimetre": one.
      if (k >= s.first && (token_text(k) == "a" || token_text(k) == "an") && u->number == 10 &&
          !(k - 1 >= s.first && token_text(k - 1) == "half") &&
          !(k - 2 >= s.first && token_text(k - 1) == "-" && token_text(k - 2) == "half")) {
        best = 1;
        h.first = k;
        k = s.first - 1;
      }
      // "one centimetre", "five millimetre", "half a centimetre": a number word.
      if (k >= s.first && w.tokens[static_cast<std::size_t>(k)].type != TokType::kNumber)
        for (auto jt = mb; jt != me; ++jt)
          if (jt->last == k)
            if (const Tag* n = a.tag_of(*jt, Cat::kNumber)) {
              best = n->number;
              h.first = jt->first;
              // "one point two centimetres"
              if (n->number < 10 && jt->first - 2 >= s.first &&
                  token_text(jt->first - 1) == "point")
                for (auto kt = mb; kt != me; ++kt)
                  if (kt->last == jt->first - 2)
                    if (const Tag* whole = a.tag_of(*kt, Cat::kNumber)) {
                      best = whole->number + n->number / 10;
                      h.first = kt->first;
                    }
              k = s.first - 1;  // nothing more to read
            }
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
        if (st != "-" && st != "x" && st != "to" && st != "*" && st != "\xC3\x97" && st != "~" &&
            st != "\xEF\xBD\x9E" && st != "\xE8\x87\xB3")  // ～, 至
          break;
        // "2 x 4mm": two polyps of 4 mm, not a 2-by-4 product; so too "3 x 3-5mm" (a range
        // after the x) and "Rectum: 2 x 2mm polyps" (an item that starts with the count).
        if (k - 2 >= s.first && (st == "x" || st == "\xC3\x97")) {
          const Token& left = w.tokens[static_cast<std::size_t>(k - 2)];
          const bool leads =
              k - 3 < s.first || token_text(k - 3) == ":" || token_text(k - 3) == "-";
          if (left.type == TokType::kNumber && left.number <= 6 &&
              left.number == std::floor(left.number) &&
              (left.number < t.number || ranged || (left.number == t.number && leads)))
            break;
        }
        ranged = ranged || (st != "x" && st != "*" && st != "\xC3\x97");
        k -= 2;
      }
      if (best < 0) continue;
      best += half;
      // A distance ("8 cm from the anal verge", "距肛门15cm") or a stalk length is not a size.
      bool distance = false;
      for (auto jt = mb; jt != me && !distance; ++jt)
        if (const Tag* d = a.tag_of(*jt, Cat::kDistance))
          // ("estimated at 6 mm": millimetres after "at" are a size, never a distance.)
          distance = d->dir == Dir::kBackward ? jt->first > h.last && jt->first - h.last <= 2
                                              : jt->last < h.first && h.first - jt->last <= 2 &&
                                                    !(u->number < 10 && jt->first == jt->last &&
                                                      token_text(jt->first) == "at");
      // Nothing of 10 cm or more is a polyp's size: "Sigmoid colon, 32 cm" is where it is.
      if (distance || best * u->number >= 100) continue;
      h.mm = best * u->number;
      // "0.6cm×0.5cm": a product written with a unit on each side is one size, the larger.
      if (!sizes.empty() && h.first >= 2 && sizes.back().last == h.first - 2) {
        const std::string_view x = token_text(h.first - 1);
        if (x == "x" || x == "\xC3\x97" || x == "*") {
          sizes.back().mm = std::max(sizes.back().mm, h.mm);
          sizes.back().last = h.last;
          continue;
        }
      }
      // "polyps of 4 and 6 mm", "3、5mm": the bare numbers joined to it are sizes too.
      std::vector<SizeHit> joined;
      for (std::int32_t j = h.first - 1; j - 1 >= s.first; j -= 2) {
        const std::string_view c = token_text(j);
        const Token& n = w.tokens[static_cast<std::size_t>(j - 1)];
        const bool joins = c == "and" || c == "&" || c == "or" || c == "\xE5\x8F\x8A" ||
                           c == "\xE5\x92\x8C" || c == "\xE3\x80\x81" ||
                           (c == "," && !joined.empty());
        if (!joins || n.type != TokType::kNumber || n.number * u->number >= 100) break;
        joined.push_back({n.number * u->number, j - 1, j - 1});
      }
      sizes.insert(sizes.end(), joined.rbegin(), joined.rend());
      sizes.push_back(h);
    }
  }

  // A table whose header names the unit ("| Site | Size (mm) | …"): the bare numbers of that
  // column in the rows below are sizes.
  void table_sizes(const Sentence& s) {
    const auto b = static_cast<std::size_t>(w.tokens[static_cast<std::size_t>(s.first)].begin);
    const auto e = static_cast<std::size_t>(w.tokens[static_cast<std::size_t>(s.last - 1)].end);
    const std::string_view row(w.lower.data() + b, e - b);
    std::vector<std::pair<std::size_t, std::size_t>> cells;  // byte ranges in w.lower
    for (std::size_t at = 0, bar; (bar = row.find('|', at)) != std::string_view::npos; at = bar + 1)
      cells.emplace_back(b + at, b + bar);
    if (cells.size() < 2) {
      size_column_ = -1;
      return;
    }
    const std::size_t tail = b + row.rfind('|') + 1;
    if (tail < e) cells.emplace_back(tail, e);
    for (std::size_t c = 0; c < cells.size(); ++c) {
      const std::string_view cell(w.lower.data() + cells[c].first,
                                  cells[c].second - cells[c].first);
      if (cell.find("size") == std::string_view::npos &&
          cell.find("\xE5\xA4\xA7\xE5\xB0\x8F") == std::string_view::npos)  // 大小
        continue;
      const bool mm = cell.find("mm") != std::string_view::npos;
      const bool cm = cell.find("cm") != std::string_view::npos;
      if (mm || cm) {
        size_column_ = static_cast<int>(c);
        size_factor_ = mm ? 1 : 10;
      }
      return;  // a header row
    }
    if (size_column_ < 0 || size_column_ >= static_cast<int>(cells.size()) || !sizes_.empty())
      return;
    const auto [cb, ce] = cells[static_cast<std::size_t>(size_column_)];
    for (std::int32_t k = s.first; k < s.last; ++k) {
      const Token& t = w.tokens[static_cast<std::size_t>(k)];
      if (t.type == TokType::kNumber && static_cast<std::size_t>(t.begin) >= cb &&
          static_cast<std::size_t>(t.end) <= ce && t.number * size_factor_ < 100) {
        sizes_.push_back({t.number * size_factor_, k, k});
        return;
      }
    }
  }

  std::string_view token_text(std::int32_t k) const {
    const Token& t = w.tokens[static_cast<std::size_t>(k)];
    return std::string_view(w.lower).substr(static_cast<std::size_t>(t.begin),
                                            static_cast<std::size_t>(t.end - t.begin));
  }
  bool ends_with(const Sentence& s, std::string_view text) const {
    return s.last > s.first && token_text(s.last - 1) == text;
  }
  // "乙状结肠距肛门约30cm见一处约0.6cm黏膜粗糙、发红，取活检2块" names no polyp, but a site, a
  // size and what was done: a polyp that a later histology of that segment brings to light is
  // this one.
  struct Unnamed {
    std::string segment;
    double mm = 0;
    Span seg_span, size_span;
    const Match* removal = nullptr;
  };
  void remember_unnamed(const Sentence& s) {
    if (s.kind != SectionKind::kFindings) return;
    const It mb = w.matches.begin() + s.match_first, me = w.matches.begin() + s.match_last;
    for (auto it = mb; it != me; ++it)
      if (a.tag_of(*it, Cat::kTarget) || a.tag_of(*it, Cat::kHistology) ||
          a.tag_of(*it, Cat::kNonPolyp) || a.tag_of(*it, Cat::kIncidental) ||
          a.tag_of(*it, Cat::kNormalExam))
        return;
    const Match* seg = site(mb, me, s.first);
    if (found_sizes_ != 1 || !seg) return;  // (one size of the text, not a table column's)
    Unnamed u;
    u.segment = a.tag_of(*seg, Cat::kSegment)->value;
    u.mm = sizes_[0].mm;
    u.seg_span = a.span(*seg);
    u.size_span = a.span(sizes_[0].first, sizes_[0].last);
    u.removal = pick_removal(mb, me);
    unnamed_.push_back(u);
  }

  // The lower-cased text of sentence s (what rules that look for a word in it read).
  std::string_view text_of(const Sentence& s) const {
    const Span whole = a.sentence_span(s);
    return std::string_view(w.lower).substr(static_cast<std::size_t>(whole.begin),
                                            static_cast<std::size_t>(whole.end - whole.begin));
  }

  // The specimen a word names at `at` of `said` ("标本2", "Specimen 3", "specimen B" when
  // `letters`): its number, or 0.
  static int specimen_number(std::string_view said, std::size_t at, bool letters) {
    while (at < said.size() && said[at] == ' ') ++at;
    if (at >= said.size() ||
        (at + 1 < said.size() && std::isalnum(static_cast<unsigned char>(said[at + 1]))))
      return 0;
    if (std::isdigit(static_cast<unsigned char>(said[at]))) return said[at] - '0';
    if (letters && said[at] >= 'a' && said[at] <= 'h') return said[at] - 'a' + 1;
    return 0;
  }

  // A polyp's size, with its class.
  void set_size(PolypLabel& p, double mm, double conf, Span where) const {
    p.size_mm = {};
    p.size_class = {};
    p.size_mm.set(mm, conf, where);
    p.size_class.set(size_class(mm), conf, where);
  }

  // The dysplasia stated for a histology, between it and `to`, not negated.
  const Match* dysplasia_after(const Sentence& s, It hist, It to) const {
    for (auto it = hist + 1; it != to; ++it)
      if (a.tag_of(*it, Cat::kDysplasia) && !a.state_of(s, it->first, it->last).negated)
        return &*it;
    return nullptr;
  }

  // A phrase that resolves a doubted lesion as none ("was a fold", "not a polyp"), unless it is
  // one side of the doubt itself ("a questionable polyp versus a prominent mucosal fold").
  bool resolves(const Sentence& s, const Match& m) const {
    if (!a.tag_of(m, Cat::kResolved)) return false;
    for (std::int32_t k = std::max(s.first, m.first - 2); k < m.first; ++k) {
      const std::string_view v = token_text(k);
      if (v == "versus" || v == "vs" || v == "or") return false;
    }
    return true;
  }

  // "(1)", "1)", "-", "•", "①": a list item.
  bool starts_item(const Sentence& s) const {
    if (s.last - s.first < 2) return false;
    const std::string_view t0 = token_text(s.first), t1 = token_text(s.first + 1);
    const bool num1 = w.tokens[static_cast<std::size_t>(s.first + 1)].type == TokType::kNumber;
    const bool num0 = w.tokens[static_cast<std::size_t>(s.first)].type == TokType::kNumber;
    int bars = 0;  // a table row: "1 | Cecum | 6 mm | 0-IIa | Cold snare"
    for (std::int32_t k = s.first; k < s.last; ++k) bars += token_text(k) == "|";
    auto letter = [](std::string_view t) { return t.size() == 1 && t[0] >= 'a' && t[0] <= 'z'; };
    const bool lettered =
        (letter(t0) && t1 == ")") ||  // "a) transverse colon, 6 mm, …"
        (t0 == "(" && letter(t1) && s.last - s.first > 2 && token_text(s.first + 2) == ")");
    return ((t0 == "(" || t0 == "\xEF\xBC\x88" || t0 == "#") && num1) || lettered ||
           (num0 && (t1 == ")" || t1 == ".")) || t0 == "-" || t0 == "\xE2\x80\xA2" || t0 == "*" ||
           bars >= 2 || (t0.size() == 3 && t0.compare(0, 2, "\xE2\x91") == 0);  // ①…⑳
  }

  const Tag* match_at_token(std::int32_t k, Cat c, It mb, It me, bool by_last = false) const {
    for (auto it = mb; it != me; ++it)
      if ((by_last ? it->last : it->first) == k)
        if (const Tag* t = a.tag_of(*it, c)) return t;
    return nullptr;
  }
  // The match ending at token k starts the sentence.
  bool match_starts_sentence(const Sentence& s, It mb, It me, std::int32_t k) const {
    for (auto it = mb; it != me; ++it)
      if (it->last == k) return it->first == s.first;
    return false;
  }

  // One "Key: value" line of a polyp block fills what the block's polyp still lacks (sizes_
  // holds the line's sizes).
  void fill_block(const Sentence& s, It mb, It me) {
    const std::string_view key = token_text(s.first);
    const bool where = key == "site" || key == "location" || key == "segment";
    if (block_ < 0) {
      polyps.emplace_back();
      polyps.back().evidence.push_back(a.sentence_span(s));
      bounds_.resize(polyps.size(), 0);
      block_ = static_cast<int>(polyps.size()) - 1;
    }
    PolypLabel& p = polyps[static_cast<std::size_t>(block_)];
    p.evidence.push_back(a.sentence_span(s));
    if (const Match* seg = site(mb, me, s.first); seg && !p.segment.value)
      p.segment.set(a.tag_of(*seg, Cat::kSegment)->value, fc, a.span(*seg));
    if (!where && !p.size_mm.value) {
      if (!sizes_.empty()) {
        set_size(p, sizes_[0].mm, fc, a.span(sizes_[0].first, sizes_[0].last));
      }
    }
    It value = mb;  // after "Removal:": the key is no removal
    while (value != me && value->first <= s.first + 1) ++value;
    if (const Match* r = pick_removal(value, me); r && !p.removal.value)
      p.removal.set(a.tag_of(*r, Cat::kRemoval)->value, fc, a.span(*r));
    if (const Match* m = nearest(mb, me, Cat::kMorphology, s.first); m && !p.morphology.value)
      p.morphology.set(a.tag_of(*m, Cat::kMorphology)->value, fc, a.span(*m));
    if (const Match* m = nearest(mb, me, Cat::kParis, s.first); m && !p.paris.value)
      p.paris.set(a.tag_of(*m, Cat::kParis)->value, fc, a.span(*m));
  }

  bool clause_break_between(std::int32_t from, std::int32_t to) const {
    for (std::int32_t k = from + 1; k < to; ++k)
      if (w.tokens[static_cast<std::size_t>(k)].type == TokType::kClauseBreak) return true;
    return false;
  }

  // How many polyps a sentence speaks of: n > 0 exactly n; n < 0 at least `bound` ("multiple"
  // 2, "at least 5" 5, "two or three" 2, "10余枚" 10, "3枚以上" 3); n == 0 not said.
  struct Quantity {
    int n = 0, bound = 0;
  };

  // A number right before the target ("two 5 mm polyps"), number + classifier anywhere
  // ("两枚"), or "multiple".
  Quantity find_quantity(const Sentence& s, It mb, It me, bool affirmed, std::int32_t anchor,
                         const std::vector<SizeHit>& sizes) const {
    Quantity q;
    bool classified = false;  // a number with its classifier ("3枚以上") is the count
    // "Numerous sessile polyps", not "Multiple biopsies were taken from the growth" or "I took
    // eight biopsies from the mass".
    auto tied = [&](std::int32_t from) {
      for (std::int32_t k = from + 1; k < anchor; ++k) {
        bool bound = false;  // "Multiple (at least 6) sessile polyps"
        for (auto it = mb; it != me && !bound; ++it)
          bound = it->first <= k && k <= it->last && a.tag_of(*it, Cat::kAtLeast);
        // (A size between them ties nothing apart: "two 3 to 4 mm polyps".)
        const bool in_size = std::any_of(sizes.begin(), sizes.end(), [&](const SizeHit& h) {
          return k >= h.first && k <= h.last;
        });
        if (!bound && !in_size && L.anaphora.count("|" + std::string(token_text(k)))) return false;
      }
      return true;
    };
    auto match_at = [&](std::int32_t k, Cat c, bool by_last) -> const Tag* {
      for (auto it = mb; it != me; ++it)
        if ((by_last ? it->last : it->first) == k)
          if (const Tag* t = a.tag_of(*it, c)) return t;
      return nullptr;
    };
    auto number_at = [&](std::int32_t k) -> double {
      if (k < s.first || k >= s.last) return -1;
      const Token& t = w.tokens[static_cast<std::size_t>(k)];
      if (t.type == TokType::kNumber) return t.number;
      for (auto it = mb; it != me; ++it)
        if (it->last == k)  // "two", "a couple of"
          if (const Tag* n = a.tag_of(*it, Cat::kNumber)) return n->number;
      return -1;
    };
    auto range_sep = [&](std::int32_t k) {
      if (k < s.first || k >= s.last) return false;
      const Token& t = w.tokens[static_cast<std::size_t>(k)];
      const std::string_view v = std::string_view(w.lower).substr(
          static_cast<std::size_t>(t.begin), static_cast<std::size_t>(t.end - t.begin));
      return v == "-" || v == "~" || v == "to" || v == "or" || v == "\xE8\x87\xB3" /* 至 */ ||
             v == "\xE5\x88\xB0" /* 到 */ || v == "\xE2\x80\x93" /* – */ ||
             v == "\xEF\xBD\x9E" /* ～ */;
    };
    // The number n at token k, as a count: a lower bound when a range, "at least" or "以上"
    // surrounds it (`next`: the token after the number and its classifier).
    auto count_at = [&](std::int32_t k, double n, std::int32_t next) {
      Quantity c{static_cast<int>(n), 0};
      const double before = range_sep(k - 1) ? number_at(k - 2) : -1;
      if (before > 0 && before < n)
        c = {-1, static_cast<int>(before)};
      else if (range_sep(k + 1) && number_at(k + 2) > n)
        c = {-1, static_cast<int>(n)};
      else if (match_at(k - 1, Cat::kAtLeast, true) || match_at(k - 2, Cat::kAtLeast, true))
        c = {-1, static_cast<int>(n)};
      else if (match_at(next, Cat::kAtLeast, false))
        c = {-1, static_cast<int>(n)};
      return c;
    };
    for (auto it = mb; it != me; ++it) {
      if (a.tag_of(*it, Cat::kMultiple) && !elsewhere(mb, it) &&  // not "胃多发息肉"
          (!affirmed || L.language == "zh" ||
           (it->last < anchor && anchor - it->last <= 6 && tied(it->last)))) {
        if (!q.n) q = {-1, 2};
      }
      // "见两枚息肉" or "息肉2枚", not "钛夹2枚" in a later clause.
      if (a.tag_of(*it, Cat::kClassifier) && it->first > s.first &&
          (!affirmed || it->first < anchor ||
           (!clause_break_between(anchor, it->first) && it->first - anchor <= 6))) {
        std::int32_t k = it->first - 1;
        // "10余枚": a lower-bound word between the number and the classifier.
        if (number_at(k) <= 0 && match_at(k, Cat::kAtLeast, true)) --k;
        const double n = number_at(k);
        if (n > 0 && n <= 50) {
          q = count_at(k, n, it->last + 1);
          if (k != it->first - 1) q = {-1, static_cast<int>(n)};
          classified = true;
        }
      }
    }
    // "2 x 4mm sigmoid polyps": a count times a size (find_sizes left the count out).
    if (affirmed && q.n <= 0 && !classified)
      for (std::int32_t k = std::max(s.first, anchor - 8); k + 1 < anchor && q.n <= 0; ++k)
        if (w.tokens[static_cast<std::size_t>(k)].type == TokType::kNumber &&
            (token_text(k + 1) == "x" || token_text(k + 1) == "\xC3\x97") &&
            (std::any_of(sizes.begin(), sizes.end(),
                         [&](const SizeHit& h) { return h.first == k + 2; }) ||
             (anchor - k <= 7 && k + 2 < s.last &&
              w.tokens[static_cast<std::size_t>(k + 2)].type != TokType::kNumber))) {
          // "3 x diminutive 0-Is polyps" (not "14 x 9 x 6 mm")
          const double n = w.tokens[static_cast<std::size_t>(k)].number;
          if (n >= 1 && n <= 10 && n == std::floor(n)) q = {static_cast<int>(n), 0};
        }
    if (affirmed && q.n <= 0 && !classified) {
      for (std::int32_t k = anchor - 1; k >= std::max(s.first, anchor - 10); --k) {
        const Token& t = w.tokens[static_cast<std::size_t>(k)];
        if (t.type == TokType::kClauseBreak || t.type == TokType::kSentenceBreak) break;
        if (anchor - k > 4 && (t.type != TokType::kNumber && !match_at(k, Cat::kNumber, true)))
          continue;  // beyond four tokens only "Two or three tiny (1-2 mm) pale polyps"
        const bool unit_follows = std::any_of(sizes.begin(), sizes.end(), [&](const SizeHit& h) {
          return k >= h.first && k <= h.last;
        });
        if (unit_follows || match_at(k + 1, Cat::kSizeUnit, false) ||
            (token_text(k + 1) == "-" && match_at(k + 2, Cat::kSizeUnit, false)))
          continue;  // a length
        auto number_token = [&](std::int32_t j) {
          return j >= s.first && j < s.last &&
                 w.tokens[static_cast<std::size_t>(j)].type == TokType::kNumber;
        };
        if ((k > s.first && token_text(k - 1) == ":" && number_token(k - 2)) ||
            (k + 1 < s.last && token_text(k + 1) == ":" && number_token(k + 2)))
          continue;  // "14:20": a time
        if ((k > s.first && token_text(k - 1) == "/") ||
            (k + 1 < s.last && token_text(k + 1) == "/"))
          continue;  // "2/3 of the circumference", "6/12": a fraction
        if (k + 1 < s.last &&
            (k == s.first || (w.tokens[static_cast<std::size_t>(k - 1)].type != TokType::kWord &&
                              token_text(k - 1) != ">")) &&  // "(>20)" counts
            (token_text(k + 1) == ")" || token_text(k + 1) == "." ||
             token_text(k + 1) == "\xEF\xBC\x89" || token_text(k + 1) == "\xE3\x80\x81"))
          continue;  // "2) Hepatic flexure: …": an item number
        if (k > s.first && token_text(k - 1) == "number") continue;  // "Number two, a 9 mm …"
        if (k + 1 < s.last && w.tokens[static_cast<std::size_t>(k + 1)].begin == t.end) {
          const std::string_view suffix = token_text(k + 1);
          if (suffix == "st" || suffix == "nd" || suffix == "rd" || suffix == "th")
            continue;  // "2nd polyp": an ordinal
        }
        const double n = number_at(k);
        if (n >= 1 && n <= 20 && tied(k) &&
            (t.type != TokType::kNumber || k == s.first ||
             w.lower[static_cast<std::size_t>(w.tokens[static_cast<std::size_t>(k - 1)].begin)] !=
                 '(')) {
          const Quantity c = count_at(k, n, k + 1);
          if (c.n > 0 || c.bound > q.bound) q = c;
          break;
        }
      }
    }
    // "a 4 mm and a 6 mm polyp": one polyp per size, joined by "and a".
    if (affirmed && q.n == 0 && !classified) {
      int linked = 1;
      for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
        const SizeHit &x = sizes[i], &y = sizes[i + 1];
        if (y.last >= anchor) break;
        const bool joined = y.first - x.last == 3 && token_text(x.last + 1) == "and" &&
                            (token_text(x.last + 2) == "a" || token_text(x.last + 2) == "an");
        linked = joined ? linked + 1 : 1;
      }
      if (linked >= 2) q = {linked, 0};
    }
    // "Multiple (4) sessile polyps": the number in brackets after the vague word is the count.
    if (affirmed && q.n <= 0 && !classified)
      for (auto it = mb; it != me; ++it)
        if (a.tag_of(*it, Cat::kMultiple) && it->last + 3 < s.last && it->last + 3 < anchor &&
            anchor - it->last <= 6 && token_text(it->last + 1) == "(" &&
            token_text(it->last + 3) == ")" &&
            w.tokens[static_cast<std::size_t>(it->last + 2)].type == TokType::kNumber) {
          const double n = w.tokens[static_cast<std::size_t>(it->last + 2)].number;
          if (n >= 2 && n <= 50 && n == std::floor(n)) q = {static_cast<int>(n), 0};
          break;
        }
    // "multiple … polyps, at least eight, 2-4 mm": the bound stated after the polyps.
    if (affirmed && q.n < 0)
      for (auto it = mb; it != me; ++it)
        if (it->first > anchor && it->first - anchor <= 4 && a.tag_of(*it, Cat::kAtLeast)) {
          const double n = number_at(it->last + 1);
          if (n >= 2 && n <= 50 && n == std::floor(n))
            q.bound = std::max(q.bound, static_cast<int>(n));
          break;
        }
    // "polyp ×2", "polyps x3": a count right after the polyp.
    if (affirmed && q.n == 0 && !classified)
      for (std::int32_t k = anchor + 1; k + 1 < std::min(s.last, anchor + 4); ++k)
        if ((token_text(k) == "x" || token_text(k) == "\xC3\x97") &&
            w.tokens[static_cast<std::size_t>(k + 1)].type == TokType::kNumber &&
            !match_at(k + 2, Cat::kSizeUnit, false)) {
          const double n = w.tokens[static_cast<std::size_t>(k + 1)].number;
          if (n >= 1 && n <= 20 && n == std::floor(n)) q = {static_cast<int>(n), 0};
          break;
        }
    if (q.n < 0 && q.bound < 1) q.bound = 2;
    return q;
  }

  // "全结肠共见息肉5枚：升结肠2枚（0.3cm、0.5cm），横结肠1枚（0.6cm），乙状结肠2枚（均约0.4cm）":
  // after the polyps are named, segments each with their count and their sizes. One polyp per
  // size where the sizes match the count, else one group with the largest. Returns false
  // (nothing done) when the sentence is not so.
  bool segment_counts(const Sentence& s, It mb, It me, std::int32_t anchor,
                      const std::vector<SizeHit>& sizes, const Match* removal) {
    struct Part {
      const Match* seg;
      int n;
    };
    std::vector<Part> parts;
    for (auto it = mb; it != me; ++it) {
      if (!a.tag_of(*it, Cat::kSegment) || it->first <= anchor) continue;
      const std::int32_t k = it->last + 1;
      if (k + 1 >= s.last || w.tokens[static_cast<std::size_t>(k)].type != TokType::kNumber)
        continue;
      const double n = w.tokens[static_cast<std::size_t>(k)].number;
      if (n < 1 || n > 20 || n != std::floor(n) || !match_at_token(k + 1, Cat::kClassifier, mb, me))
        continue;
      parts.push_back({&*it, static_cast<int>(n)});
    }
    if (parts.size() < 2) return false;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const std::int32_t from = parts[i].seg->last;
      const std::int32_t to = i + 1 < parts.size() ? parts[i + 1].seg->first : s.last;
      std::vector<const SizeHit*> mine;
      for (const auto& h : sizes)
        if (h.first > from && h.last < to) mine.push_back(&h);
      const bool apart = static_cast<int>(mine.size()) == parts[i].n && parts[i].n > 1;
      const int polyps_here = apart ? parts[i].n : 1;
      for (int j = 0; j < polyps_here; ++j) {
        PolypLabel p;
        p.evidence.push_back(a.sentence_span(s));
        p.segment.set(a.tag_of(*parts[i].seg, Cat::kSegment)->value, fc, a.span(*parts[i].seg));
        const SizeHit* h = apart ? mine[static_cast<std::size_t>(j)] : nullptr;
        for (const SizeHit* z : mine)
          if (!apart && (!h || z->mm > h->mm)) h = z;
        if (h) {
          set_size(p, h->mm, fc, a.span(h->first, h->last));
        }
        if (removal) p.removal.set(a.tag_of(*removal, Cat::kRemoval)->value, fc, a.span(*removal));
        p.quantity = apart ? 1 : parts[i].n;
        polyps.push_back(std::move(p));
        bounds_.resize(polyps.size(), 0);
      }
    }
    last_candidate_ = false;
    return true;
  }

  // Several polyps in one sentence, each after its own segment
  // ("右半结肠见一枚约0.5cm息肉，左半结肠 见一枚约0.4cm息肉，均予冷圈套切除";
  // "升结肠一枚息肉，横结肠一枚息肉，大小分别约0.8cm、1.2cm"): one polyp each, with the sizes
  // between them (or, listed after all of them, in order), the sentence's removal shared. Returns
  // false (nothing done) when the sentence is not so.
  bool several(const Sentence& s, It mb, It me, const std::vector<SizeHit>& sizes,
               const Match* removal) {
    std::vector<const Mention*> ms;
    for (const auto& m : mentions_)
      if (m.what == "polyp" && !m.state.negated && !m.state.possible && !m.state.historical &&
          !m.state.family && !m.state.hypothetical)
        ms.push_back(&m);
    if (ms.size() < 2 || sizes.empty()) return false;  // "…in pot 1, the ascending polyps in pot 2"
    std::vector<const Match*> segs(ms.size(), nullptr);
    std::set<std::string> distinct;
    for (std::size_t i = 0; i < ms.size(); ++i) {
      const std::int32_t from = i ? ms[i - 1]->last : s.first - 1;
      for (auto it = mb; it != me; ++it)
        if (it->first > from && it->last < ms[i]->first && a.tag_of(*it, Cat::kSegment))
          segs[i] = &*it;
      if (!segs[i]) return false;
      distinct.insert(a.tag_of(*segs[i], Cat::kSegment)->value);
    }
    if (distinct.size() < 2) return false;
    std::vector<const SizeHit*> size_of(ms.size(), nullptr);
    const bool listed_after =
        sizes.size() == ms.size() && std::all_of(sizes.begin(), sizes.end(), [&](const SizeHit& h) {
          return h.first > ms.back()->last;
        });
    for (std::size_t i = 0; i < ms.size(); ++i) {
      if (listed_after) {
        size_of[i] = &sizes[i];
        continue;
      }
      const std::int32_t from = i ? ms[i - 1]->last : s.first - 1;
      const std::int32_t to = i + 1 < ms.size() ? ms[i + 1]->first : s.last;
      for (const auto& h : sizes)
        if (h.first > from && h.last < to && (h.first < ms[i]->first || !size_of[i]))
          size_of[i] = &h;
    }
    for (std::size_t i = 0; i < ms.size(); ++i) {
      PolypLabel p;
      p.evidence.push_back(a.sentence_span(s));
      p.segment.set(a.tag_of(*segs[i], Cat::kSegment)->value, fc, a.span(*segs[i]));
      if (const SizeHit* h = size_of[i]) {
        set_size(p, h->mm, fc, a.span(h->first, h->last));
      }
      if (removal) p.removal.set(a.tag_of(*removal, Cat::kRemoval)->value, fc, a.span(*removal));
      polyps.push_back(std::move(p));
      bounds_.resize(polyps.size(), 0);
    }
    last_candidate_ = false;
    return true;
  }

  // The most specific removal of a sentence: a named method over a bare "removed", which is
  // over "not removed" and a biopsy; forceps with a biopsy and no word of removal are a biopsy.
  const Match* pick_removal(It mb, It me) const {
    static const std::map<std::string, int> rank = {
        {"esd", 9},     {"emr", 8},         {"hot_snare", 7},   {"cold_snare", 6}, {"ablation", 5},
        {"forceps", 4}, {"polypectomy", 3}, {"not_removed", 2}, {"biopsy", 1}};
    const Match* best = nullptr;
    int best_rank = 0;
    bool biopsy = false, excised = false;
    // ("拟择期行EMR/ESD", "planned for EMR": a removal yet to come is none today.)
    auto planned = [&](const Match& m) {
      const auto at = static_cast<std::size_t>(w.tokens[static_cast<std::size_t>(m.first)].begin);
      const std::size_t from = at > 16 ? at - 16 : 0;
      const std::string_view before(w.lower.data() + from, at - from);
      return before.find("\xE6\x8B\x9F") != std::string_view::npos ||              // 拟
             before.find("\xE6\x8B\xA9\xE6\x9C\x9F") != std::string_view::npos ||  // 择期
             before.find("planned") != std::string_view::npos ||
             before.find("referred for") != std::string_view::npos;
    };
    for (auto it = mb; it != me; ++it)
      if (const Tag* t = a.tag_of(*it, Cat::kRemoval)) {
        if (t->value != "biopsy" && t->value != "not_removed" && planned(*it)) continue;
        biopsy = biopsy || t->value == "biopsy";
        excised = excised || t->value == "polypectomy";
        const auto r = rank.find(t->value);
        const int v = r == rank.end() ? 0 : r->second;
        if (v > best_rank) best = &*it, best_rank = v;
      }
    if (best && a.tag_of(*best, Cat::kRemoval)->value == "forceps" && biopsy && !excised)
      for (auto it = mb; it != me; ++it)
        if (const Tag* t = a.tag_of(*it, Cat::kRemoval))
          if (t->value == "biopsy") return &*it;
    return best;
  }

  // A findings sentence describes a new polyp, states a count, or adds a removal to the last.
  // The segment nearest the polyp that is its site, not a landmark ("升结肠近肝曲",
  // "ascending colon 5 cm from the ileocaecal valve").
  const Match* site(It mb, It me, std::int32_t anchor) const {
    const Match* best = nullptr;
    const Match* any = nullptr;
    for (auto it = mb; it != me; ++it) {
      if (!a.tag_of(*it, Cat::kSegment)) continue;
      bool landmark = false;
      for (auto jt = mb; jt != me; ++jt)
        if (a.tag_of(*jt, Cat::kLandmark) && jt->last < it->first && it->first - jt->last <= 2)
          landmark = true;
      if (!any || std::abs(it->first - anchor) < std::abs(any->first - anchor)) any = &*it;
      if (!landmark && (!best || std::abs(it->first - anchor) < std::abs(best->first - anchor)))
        best = &*it;
    }
    return best ? best : any;
  }

  void findings(const Sentence& s, It mb, It me, bool affirmed, std::int32_t anchor,
                const std::vector<SizeHit>& sizes, const Quantity& quantity) {
    const Match* seg = site(mb, me, anchor);
    const Match* morph = nearest(mb, me, Cat::kMorphology, anchor);
    const Match* paris = nearest(mb, me, Cat::kParis, anchor);
    const Match* sword = nearest(mb, me, Cat::kSizeWord, anchor);
    const Match* removal = pick_removal(mb, me);
    inline_pathology_ = nullptr;
    for (auto it = mb; it != me && !inline_pathology_; ++it)
      if (a.tag_of(*it, Cat::kPathInline))
        for (auto jt = it + 1; jt != me && !inline_pathology_; ++jt)
          if (a.tag_of(*jt, Cat::kHistology)) {
            const MentionState st = a.state_of(s, jt->first, jt->last);
            if (!st.negated && !st.historical && !st.hypothetical) inline_pathology_ = &*jt;
          }
    // The size nearest the polyp; of a group ("two polyps, 3 and 5 mm"), the largest.
    const bool group = quantity.n > 1 || quantity.n < 0;
    const SizeHit* size = nullptr;
    for (const auto& h : sizes)
      if (!size ||
          (group ? h.mm > size->mm : std::abs(h.first - anchor) < std::abs(size->first - anchor)))
        size = &h;

    // A doubted polyp is described too, aside: pathology may confirm it ("possible 3 mm polyp
    // versus a follicle, removed" … "tubular adenoma").
    const bool possible_only = !affirmed && sentence_possible_;
    // A recurrence "at the scar edge" sits where the scar is, named in an earlier sentence.
    const std::string_view said = text_of(s);
    const bool at_scar = said.find("scar") != std::string_view::npos ||
                         said.find("\xE7\x98\xA2\xE7\x97\x95") != std::string_view::npos ||  // 瘢痕
                         said.find("\xE7\x96\xA4\xE7\x97\x95") != std::string_view::npos;  // 疤痕
    if (at_scar && seg) scar_segment_ = seg;
    if (at_scar && !seg && scar_segment_) seg = scar_segment_;
    if (affirmed && segment_counts(s, mb, me, anchor, sizes, removal)) return;
    if (affirmed && several(s, mb, me, sizes, removal)) return;
    const bool describes = (affirmed || possible_only) && (seg || size || sword || morph || paris);
    // "The polyp was sessile.", "The polyps were 2 to 5 mm in size.": the polyp just described.
    // "the polyp", "the large polyp" (not "the other polyp", "a further polyp").
    auto refers_back = [&] {
      // "As this was a small hyperplastic polyp", "which were both tubular adenomas".
      for (std::int32_t k = anchor - 1; k > std::max(s.first, anchor - 5); --k) {
        const std::string_view v = token_text(k), before = token_text(k - 1);
        if ((v == "was" || v == "were") &&
            (before == "this" || before == "it" || before == "which" || before == "these"))
          return true;
      }
      for (std::int32_t k = anchor - 1; k >= std::max(s.first, anchor - 2); --k) {
        const std::string word(token_text(k));
        if (word == "other" || word == "second" || word == "another" || word == "further" ||
            word == "additional" || word == "new")
          return false;
        if (L.anaphora.count(word)) return true;
      }
      return false;
    };
    // "Scope passed beyond the lesion to the caecum": "the lesion" is the one described, wherever
    // the sentence goes next.
    const bool the_generic =
        anchor > s.first &&
        std::any_of(mentions_.begin(), mentions_.end(),
                    [&](const Mention& m) { return m.first == anchor && m.what == "generic"; }) &&
        (token_text(anchor - 1) == "the" || token_text(anchor - 1) == "this");
    const bool anaphoric = anchor > s.first && (!seg || the_generic) && !polyps.empty() &&
                           !last_candidate_ && refers_back();
    if (describes && anaphoric && affirmed) {
      PolypLabel& q = polyps.back();
      if (size && !q.size_mm.value) {
        set_size(q, size->mm, fc, a.span(size->first, size->last));
      }
      if (morph && !q.morphology.value)
        q.morphology.set(a.tag_of(*morph, Cat::kMorphology)->value, fc, a.span(*morph));
      if (removal && !q.removal.value)
        q.removal.set(a.tag_of(*removal, Cat::kRemoval)->value, fc, a.span(*removal));
      q.evidence.push_back(a.sentence_span(s));
      return;
    }
    if (describes) {
      PolypLabel p;
      p.evidence.push_back(a.sentence_span(s));
      if (seg) p.segment.set(a.tag_of(*seg, Cat::kSegment)->value, fc, a.span(*seg));
      if (size) {
        set_size(p, size->mm, fc, a.span(size->first, size->last));
      } else if (sword) {
        p.size_class.set(a.tag_of(*sword, Cat::kSizeWord)->value, fc, a.span(*sword));
      }
      if (paris) p.paris.set(a.tag_of(*paris, Cat::kParis)->value, fc, a.span(*paris));
      if (morph)
        p.morphology.set(a.tag_of(*morph, Cat::kMorphology)->value, fc, a.span(*morph));
      else if (paris)
        p.morphology.set(paris_morphology(*p.paris.value), fc, a.span(*paris));
      if (removal) p.removal.set(a.tag_of(*removal, Cat::kRemoval)->value, fc, a.span(*removal));
      p.quantity = quantity.n > 0 ? quantity.n : (quantity.n < 0 ? -1 : 1);
      // "Two polyps, 5 mm and 8 mm" / "4 mm in the ascending and 9 mm in the sigmoid colon":
      // as many sizes as polyps describe each polyp on its own (with its segment when the
      // segments are as many too).
      std::vector<const Match*> segs;
      for (auto it = mb; it != me; ++it)
        if (a.tag_of(*it, Cat::kSegment)) segs.push_back(&*it);
      // "Sessile polyps: caecum 4 mm, transverse 6 mm, sigmoid 8 mm": as many segments as sizes
      // under a plural word are as many polyps.
      Quantity q = quantity;
      if (q.n == 0 && sizes.size() >= 2 && segs.size() == sizes.size() && plural_anchor(anchor))
        q = {static_cast<int>(sizes.size()), 0};
      if (q.n >= 2 && static_cast<int>(sizes.size()) == q.n) {
        const Quantity& quantity = q;
        ++groups_;
        for (int i = 0; i < quantity.n; ++i) {
          PolypLabel one = p;
          const SizeHit& h = sizes[static_cast<std::size_t>(i)];
          one.quantity = 1;
          set_size(one, h.mm, fc, a.span(h.first, h.last));
          if (static_cast<int>(segs.size()) == quantity.n) {
            one.segment = {};
            const Match* sg = segs[static_cast<std::size_t>(i)];
            one.segment.set(a.tag_of(*sg, Cat::kSegment)->value, fc, a.span(*sg));
          }
          if (possible_only) candidate_at_.push_back(polyps.size());
          (possible_only ? candidates_ : polyps).push_back(std::move(one));
          if (!possible_only) {
            bounds_.resize(polyps.size(), 0);
            group_of_.resize(polyps.size(), -1);
            // One segment for all: one jar, one result (paired segments are apart).
            if (static_cast<int>(segs.size()) != quantity.n) group_of_.back() = groups_;
          }
          last_candidate_ = possible_only;
        }
        return;
      }
      // "升结肠及横结肠各见一枚约0.4cm息肉", "one polyp in each of the caecum and sigmoid": one
      // polyp per segment.
      const bool each = said.find("\xE5\x90\x84\xE8\xA7\x81") != std::string_view::npos ||  // 各见
                        said.find("\xE5\x90\x84\xE6\x9C\x89") != std::string_view::npos ||  // 各有
                        said.find("\xE5\x90\x84\xE4\xB8\x80") != std::string_view::npos ||  // 各一
                        said.find("in each of") != std::string_view::npos;
      if (each && quantity.n <= 1 && quantity.n >= 0 && segs.size() >= 2 && !possible_only) {
        std::vector<std::string> seen;
        for (const Match* sg : segs) {
          const std::string& v = a.tag_of(*sg, Cat::kSegment)->value;
          if (std::find(seen.begin(), seen.end(), v) != seen.end()) continue;
          seen.push_back(v);
          PolypLabel one = p;
          one.segment = {};
          one.segment.set(v, fc, a.span(*sg));
          polyps.push_back(std::move(one));
          bounds_.resize(polyps.size(), 0);
        }
        if (seen.size() >= 2) {
          // "横结肠、乙状结肠各见一枚息肉，大小分别约0.4cm及0.8cm": the sizes in the same order.
          if (sizes.size() == seen.size())
            for (std::size_t i = 0; i < seen.size(); ++i) {
              PolypLabel& q = polyps[polyps.size() - seen.size() + i];
              const SizeHit& h = sizes[i];
              set_size(q, h.mm, fc, a.span(h.first, h.last));
            }
          last_candidate_ = false;
          return;
        }
        polyps.pop_back();
        bounds_.resize(polyps.size(), 0);
      }
      // A group spread over several segments ("in the caecum, ascending and transverse colon")
      // has none of them.
      if (group && std::any_of(mb, me, [&](const Match& m) {
            return a.tag_of(m, Cat::kWholeColon) != nullptr;
          }))
        p.segment = {};  // "全结肠及直肠另见10余枚息肉"
      else if (group && segs.size() >= 2 &&
               std::any_of(segs.begin(), segs.end(), [&](const Match* m) {
                 return a.tag_of(*m, Cat::kSegment)->value !=
                        a.tag_of(*segs[0], Cat::kSegment)->value;
               }))
        p.segment = {};
      // "其旁另见数枚微小息肉", "adjacent to it, two more": where the polyp before was.
      if (!p.segment.value && !polyps.empty() && polyps.back().segment.value) {
        const std::string_view text = said;
        if (text.find("\xE5\x85\xB6\xE6\x97\x81") != std::string_view::npos ||  // 其旁
            text.find("adjacent to it") != std::string_view::npos ||
            text.find("next to it") != std::string_view::npos ||
            text.find("nearby") != std::string_view::npos)
          p.segment = polyps.back().segment;
      }
      // The same lesion said again ("…Appearances c/w rectal cancer."): no size, no number, and
      // a polyp of its segment already read.
      if (!size && !sword && quantity.n == 0 && p.segment.value)
        for (auto& q : polyps)
          if (q.segment.value == p.segment.value) {
            if (!q.removal.value && p.removal.value) q.removal = p.removal;
            q.evidence.push_back(a.sentence_span(s));
            return;
          }
      last_candidate_ = possible_only;
      if (possible_only) {
        candidates_.push_back(std::move(p));
        candidate_at_.push_back(polyps.size());
        return;
      }
      polyps.push_back(std::move(p));
      bounds_.resize(polyps.size(), 0);
      bounds_.back() = quantity.n < 0 ? quantity.bound : 0;
    } else {
      if (affirmed) count_said(quantity);
      std::vector<PolypLabel>& last = last_candidate_ ? candidates_ : polyps;
      if (removal && !last.empty() && !last.back().removal.value) {
        last.back().removal.set(a.tag_of(*removal, Cat::kRemoval)->value, fc, a.span(*removal));
        last.back().evidence.push_back(a.sentence_span(s));
        // "Two sessile polyps, 4 mm and 6 mm. Resected with a cold snare.": the whole group.
        group_of_.resize(polyps.size(), -1);
        const int g = last_candidate_ || polyps.empty() ? -1 : group_of_.back();
        for (std::size_t i = 0; g >= 0 && i + 1 < polyps.size(); ++i)
          if (group_of_[i] == g && !polyps[i].removal.value)
            polyps[i].removal = last.back().removal;
        // "Each was removed by cold snare", "All were resected": every polyp of the sentence
        // before.
        const std::string_view lead = token_text(s.first);
        if (!last_candidate_ && (lead == "each" || lead == "all" || lead == "both" ||
                                 lead == "they" || lead == "these"))
          for (std::size_t i = last_batch_; i + 1 < polyps.size(); ++i)
            if (!polyps[i].removal.value) polyps[i].removal = last.back().removal;
      }
      // "It measured approximately 18 mm, Paris 0-Is": the size of the polyp just described.
      const std::string lead(token_text(s.first));
      if (!affirmed && size && !last.empty() && !last.back().size_mm.value &&
          (lead == "it" || lead == "this" || lead == "measuring" || L.anaphora.count(lead))) {
        set_size(last.back(), size->mm, fc, a.span(size->first, size->last));
        last.back().evidence.push_back(a.sentence_span(s));
      }
    }
  }

  // The mention at token `anchor` is an English plural ("polyps", "adenomas").
  bool plural_anchor(std::int32_t anchor) const {
    const std::string_view v = token_text(anchor);
    return v.size() > 3 && v.back() == 's';
  }

  // Pathology: every histology of a sentence is one entry ("(1) TA (2) HP", "the transverse
  // polyp was an SSL, the descending colon polyp a TA"); its site is the segments between the
  // previous histology and it, else (first entry) the site line just before ("C. SIGMOID COLON,
  // POLYP:" then "Tubular adenoma"). An entry about several polyps ("polyps x3", "adenomas")
  // goes to every polyp of its sites still without histology.
  void pathology(const Sentence& s, It mb, It me) {
    std::vector<It> hists;
    for (auto it = mb; it != me; ++it)
      if (a.tag_of(*it, Cat::kHistology) && !a.state_of(s, it->first, it->last).negated)
        hists.push_back(it);
    const Match* site_before = site_only_;
    site_only_ = nullptr;
    if (hists.empty()) {
      site_only_ = site(mb, me, s.first);
      return;
    }
    // "(k)", "（k）", "k)" or "#k" at the start of the entry.
    int index = 0;
    for (std::int32_t k = s.first; k < std::min(s.last, s.first + 2); ++k) {
      const Token& t = w.tokens[static_cast<std::size_t>(k)];
      if (t.type != TokType::kNumber || k + 1 >= s.last) continue;
      const std::string_view c = token_text(k + 1);
      // … or "Polyp 1 -", "Specimen 2:", "Pot 3" at the start: the number names the polyp.
      const bool named =
          (k == s.first + 1 && L.specimen_words.count(std::string(token_text(s.first)))) ||
          // "L2: Tubular adenoma": a lesion label written as one word.
          (k == s.first + 1 && token_text(s.first) == "l" && c == ":" &&
           w.tokens[static_cast<std::size_t>(s.first)].end == t.begin) ||
          (k > s.first && match_at_token(k - 1, Cat::kTarget, mb, me, true) &&
           match_starts_sentence(s, mb, me, k - 1));  // "息肉1（盲肠）："
      if (named && t.number == std::floor(t.number)) {
        index = static_cast<int>(t.number);
        break;
      }
      // … or a bare leading number: "1. Tubular adenoma", "2 TA", "4 TVA, LGD".
      const bool leading = k == s.first && t.number == std::floor(t.number) && t.number <= 30 &&
                           !match_at_token(k + 1, Cat::kSizeUnit, mb, me);
      if (c == ")" || c == "\xEF\xBC\x89" || (k > s.first && token_text(k - 1) == "#") || leading) {
        index = static_cast<int>(t.number);
        break;
      }
    }
    // "标本2（降结肠）增生性息肉", "Specimen 3:": a specimen word and its number open the entry.
    const std::string_view said = text_of(s);
    for (auto word = L.specimen_words.begin(); index == 0 && word != L.specimen_words.end(); ++word)
      if (said.compare(0, word->size(), *word) == 0)
        index = specimen_number(said, word->size(), false);
    // "(B) 7mm – SSL", "b) TA", "C. Tubular adenoma": a specimen letter names the polyp in order.
    if (index == 0 && s.last - s.first >= 3) {
      const std::int32_t k = token_text(s.first) == "(" ? s.first + 1 : s.first;
      const std::string_view l = token_text(k), c = token_text(k + 1);
      if (l.size() == 1 && l[0] >= 'a' && l[0] <= 'h' &&
          (c == ")" || c == "\xEF\xBC\x89" || (k == s.first && (c == "." || c == ":"))))
        index = l[0] - 'a' + 1;
    }
    // "specimen B is reclassified as …", "标本1经复阅，修正诊断为：…": a correction names its
    // specimen anywhere in the sentence and replaces that polyp's earlier result.
    correcting_ = false;
    if (!L.corrections.empty()) {
      correcting_ = std::any_of(L.corrections.begin(), L.corrections.end(), [&](const auto& c) {
        return said.find(c) != std::string_view::npos;
      });
      for (auto word = L.specimen_words.begin();
           correcting_ && index == 0 && word != L.specimen_words.end(); ++word)
        if (*word != "polyp" && *word != "lesion")
          for (std::size_t at = said.find(*word); index == 0 && at != std::string_view::npos;
               at = said.find(*word, at + 1))
            index = specimen_number(said, at + word->size(), true);
      if (!index) correcting_ = false;
    }
    // "1-3: tubular adenomas": one result for the polyps numbered 1 to 3.
    if (s.last - s.first >= 4 &&
        w.tokens[static_cast<std::size_t>(s.first)].type == TokType::kNumber &&
        token_text(s.first + 1) == "-" &&
        w.tokens[static_cast<std::size_t>(s.first + 2)].type == TokType::kNumber) {
      const int a0 = static_cast<int>(w.tokens[static_cast<std::size_t>(s.first)].number);
      const int a1 = static_cast<int>(w.tokens[static_cast<std::size_t>(s.first + 2)].number);
      if (a0 >= 1 && a1 >= a0 && a1 <= static_cast<int>(polyps.size())) {
        for (int k = a0; k <= a1; ++k) entry(s, mb, me, *hists[0], nullptr, k, {}, nullptr, false);
        return;
      }
    }
    for (std::size_t i = 0; i < hists.size(); ++i) {
      const It from = i == 0 ? mb : hists[i - 1] + 1, to = i + 1 < hists.size() ? hists[i + 1] : me;
      std::vector<std::string> sites;
      const Match* last_site = nullptr;
      bool plural = false;
      for (auto it = from; it != hists[i] + 1; ++it) {
        if (const Tag* t = a.tag_of(*it, Cat::kSegment)) {
          sites.push_back(t->value);
          last_site = &*it;
        }
        const std::string_view word = token_text(it->last);
        if ((a.tag_of(*it, Cat::kTarget) || a.tag_of(*it, Cat::kHistology)) && word.size() > 3 &&
            word.back() == 's')
          plural = true;  // "polyps", "adenomas"
        if (word == "x" && it->last + 1 < s.last &&
            w.tokens[static_cast<std::size_t>(it->last + 1)].type == TokType::kNumber)
          plural = true;  // "polyps x3"
      }
      // "Specimen 1 (cecum x2): tubular adenoma", "desc - TA x2": that many polyps, one result.
      int times = 0;
      for (std::int32_t k = (i == 0 ? s.first : hists[i - 1]->last + 1);
           k + 1 < std::min(s.last, hists[i]->last + 3) && !plural; ++k) {
        const std::string_view v = token_text(k);
        const Token& n = w.tokens[static_cast<std::size_t>(k + 1)];
        if ((v == "x" || v == "\xC3\x97") && n.type == TokType::kNumber && n.number >= 2 &&
            n.number <= 20 && n.begin == w.tokens[static_cast<std::size_t>(k)].end) {
          plural = true;
          times = static_cast<int>(n.number);
        }
      }
      // "all three tubular adenomas (ascending, transverse, splenic flexure)": sites after it.
      if (sites.empty() && plural)
        for (auto it = hists[i] + 1; it != to; ++it)
          if (const Tag* t = a.tag_of(*it, Cat::kSegment)) {
            sites.push_back(t->value);
            last_site = &*it;
          }
      // "1. SSL … 2. Tubular adenoma … 3. Hyperplastic polyp" on one line: a number before the
      // histology opens an entry of its own.
      int own_index = 0;
      for (std::int32_t k = hists[i]->first - 1;
           i > 0 && k >= std::max(s.first, hists[i]->first - 2); --k) {
        const Token& t = w.tokens[static_cast<std::size_t>(k)];
        if (t.type == TokType::kNumber && k + 1 < hists[i]->first &&
            t.number == std::floor(t.number) && t.number >= 1 && t.number <= 30) {
          const std::string_view c = token_text(k + 1);
          if (c == "." || c == ")" || c == "\xEF\xBC\x89" || c == "\xE3\x80\x81")
            own_index = static_cast<int>(t.number);
        }
      }
      // A second histology without a site of its own is the same entry ("adenocarcinoma
      // arising in a tubulovillous adenoma", "无蒂锯齿状病变（SSL）"); cancer found in it wins.
      if (sites.empty() && i > 0 && own_index == 0) {
        if (last_entry_ && a.tag_of(*hists[i], Cat::kHistology)->value == "adenocarcinoma") {
          last_entry_->histology = {};
          last_entry_->group = {};
          last_entry_->histology.set("adenocarcinoma", fc, a.span(*hists[i]));
          last_entry_->group.set("cancer", fc, a.span(*hists[i]));
        }
        continue;
      }
      // "（胃底）胃底腺息肉": a result about another organ.
      bool other_organ = false;
      for (auto it = from; it != hists[i] && !other_organ; ++it)
        other_organ = a.tag_of(*it, Cat::kOtherOrgan) && sites.empty();
      if (other_organ) continue;
      // "（升结肠、横结肠、降结肠）管状腺瘤": several sites, one result each.
      if (sites.size() >= 2 && std::any_of(sites.begin(), sites.end(),
                                           [&](const std::string& v) { return v != sites[0]; }))
        plural = true;
      if (sites.empty() && i == 0 && site_before) {
        sites.push_back(a.tag_of(*site_before, Cat::kSegment)->value);
        last_site = site_before;
      }
      // "Histo: both tubular adenomas", "Histopathology (a-c): Tubular adenomas": one result
      // for every polyp not yet diagnosed.
      if (sites.empty() && hists.size() == 1) {
        bool collective = false;  // ("both TA": the word says it, without a plural)
        {                         // "送检息肉组织5枚，均为管状腺瘤"
          const auto b =
              static_cast<std::size_t>(w.tokens[static_cast<std::size_t>(s.first)].begin);
          const auto e =
              static_cast<std::size_t>(w.tokens[static_cast<std::size_t>(hists[i]->first)].begin);
          const std::string_view before(w.lower.data() + b, e - b);
          for (const char* all : {"\xE5\x9D\x87\xE4\xB8\xBA",   // 均为
                                  "\xE5\x9D\x87\xE7\xB3\xBB",   // 均系
                                  "\xE5\x9D\x87\xE6\x98\xAF",   // 均是
                                  "\xE7\x9A\x86\xE4\xB8\xBA"})  // 皆为
            collective = collective || before.find(all) != std::string_view::npos;
        }
        for (std::int32_t k = s.first; k < hists[i]->first && !collective; ++k) {
          const std::string_view v = token_text(k);
          collective =
              v == "both" || (plural && (v == "all" || v == "each")) ||
              (plural && v.size() == 1 && v[0] >= 'a' && v[0] <= 'h' && k + 2 < hists[i]->first &&
               token_text(k + 1) == "-" && token_text(k + 2).size() == 1);
        }
        if (collective && std::any_of(polyps.begin(), polyps.end(),
                                      [](const PolypLabel& p) { return !p.histology.value; })) {
          const Match* dys = dysplasia_after(s, hists[i], to);
          for (int k = 1; k <= static_cast<int>(polyps.size()); ++k)
            if (!polyps[static_cast<std::size_t>(k - 1)].histology.value)
              entry(s, mb, me, *hists[i], dys, k, {}, nullptr, false);
          continue;
        }
      }
      const Match* dys = dysplasia_after(s, hists[i], to);
      // "(B) 7mm – sessile serrated lesion": the size the entry names.
      double named_mm = 0;
      const std::int32_t lo = i == 0 ? s.first : hists[i - 1]->last;
      for (const SizeHit& h : sizes_)
        if (h.first > lo && h.last < hists[i]->first) named_mm = h.mm;
      last_entry_ = nullptr;
      entry(s, mb, me, *hists[i], dys, i == 0 ? index : own_index, sites, last_site, plural,
            named_mm, times);
    }
  }

  void entry(const Sentence& s, It mb, It me, const Match& hist, const Match* dys, int index,
             const std::vector<std::string>& sites, const Match* last_site, bool plural,
             double named_mm = 0, int times = 0) {
    const std::string hv = a.tag_of(hist, Cat::kHistology)->value;
    auto give = [&](PolypLabel& p) {
      p.histology = {};
      p.group = {};
      p.dysplasia = {};
      p.histology.set(hv, fc, a.span(hist));
      if (auto g = pathology_group(hv)) p.group.set(*g, fc, a.span(hist));
      if (dys) p.dysplasia.set(a.tag_of(*dys, Cat::kDysplasia)->value, fc, a.span(*dys));
      p.evidence.push_back(a.sentence_span(s));
    };
    if (plural && !sites.empty() && named_mm == 0) {
      int given = 0;  // (at most `times` of them when the entry says how many)
      for (auto& p : polyps)
        if (!p.histology.value && p.segment.value && (times == 0 || given < times) &&
            std::find(sites.begin(), sites.end(), *p.segment.value) != sites.end()) {
          give(p);
          given += p.quantity > 0 ? p.quantity : 1;
        }
      if (given) return;
    }
    const std::string seg_value = sites.empty() ? std::string() : sites.back();
    PolypLabel* target = nullptr;
    // A polyp of another segment than the entry names is not its polyp.
    auto fits = [&](const PolypLabel& p) {
      return (!p.histology.value || correcting_) &&
             (seg_value.empty() || !p.segment.value || *p.segment.value == seg_value);
    };
    // A correction of specimen k: the polyp that specimen k's first result went to.
    if (correcting_ && index >= 1)
      if (const auto at = specimen_of_.find(index);
          at != specimen_of_.end() && at->second < polyps.size())
        target = &polyps[at->second];
    // "(B) 7mm – sessile serrated lesion": the polyp of that size.
    for (auto& p : polyps)
      if (!target && named_mm > 0 && fits(p) && p.size_mm.value && *p.size_mm.value == named_mm)
        target = &p;
    // "(2) tubular adenoma": the polyp of findings item 2, else the second polyp.
    item_of_.resize(polyps.size(), 0);
    for (std::size_t i = 0; index >= 1 && !target && i < polyps.size(); ++i)
      if (item_of_[i] == index && fits(polyps[i])) target = &polyps[i];
    if (!target && index >= 1 && index <= static_cast<int>(polyps.size()) &&
        fits(polyps[static_cast<std::size_t>(index - 1)]))
      target = &polyps[static_cast<std::size_t>(index - 1)];
    // By segment: prefer a polyp that was removed or biopsied (tissue reached pathology).
    for (int pass = 0; pass < 2 && !target; ++pass)
      for (auto& p : polyps)
        if (!target && !seg_value.empty() && !p.histology.value && p.segment.value &&
            *p.segment.value == seg_value &&
            (pass == 1 || (p.removal.value && *p.removal.value != "not_removed")))
          target = &p;
    // Else the first polyp still without histology whose segment does not contradict the entry
    // (one of them has none): the same polyp, not one more.
    for (auto& p : polyps)
      if (!target && !p.histology.value && (seg_value.empty() || !p.segment.value)) target = &p;
    // Else a later result for a polyp already diagnosed replaces the earlier one (a corrected
    // report).
    for (auto& p : polyps)
      if (!target && !seg_value.empty() && p.segment.value == seg_value) target = &p;
    // Else a doubted polyp of that segment (or the only one) that the histology confirms.
    if (!target)
      for (std::size_t i = 0; i < candidates_.size() && !target; ++i)
        if (seg_value.empty() ? candidates_.size() == 1
                              : candidates_[i].segment.value == seg_value) {
          // In the order the polyps were described.
          const std::size_t at = std::min(candidate_at_[i], polyps.size());
          polyps.insert(polyps.begin() + static_cast<std::ptrdiff_t>(at),
                        std::move(candidates_[i]));
          bounds_.resize(polyps.size() - 1, 0);
          bounds_.insert(bounds_.begin() + static_cast<std::ptrdiff_t>(at), 0);
          group_of_.resize(polyps.size() - 1, -1);
          group_of_.insert(group_of_.begin() + static_cast<std::ptrdiff_t>(at), -1);
          item_of_.resize(polyps.size() - 1, 0);
          item_of_.insert(item_of_.begin() + static_cast<std::ptrdiff_t>(at), 0);
          origin_of_.resize(polyps.size() - 1, -1);
          origin_of_.insert(origin_of_.begin() + static_cast<std::ptrdiff_t>(at), -1);
          candidates_.erase(candidates_.begin() + static_cast<std::ptrdiff_t>(i));
          candidate_at_.erase(candidate_at_.begin() + static_cast<std::ptrdiff_t>(i));
          target = &polyps[at];
        }
    // A histology without a site, every polyp already diagnosed: a summary ("Given the 10 mm
    // SSL…"), not one more polyp.
    if (!target && seg_value.empty() && !polyps.empty()) return;
    if (!target) {
      polyps.emplace_back();
      target = &polyps.back();
      if (last_site) target->segment.set(seg_value, fc, a.span(*last_site));
      if (const Match* r = pick_removal(mb, me))  // "C. Rectum, polyp, cold forceps: …"
        target->removal.set(a.tag_of(*r, Cat::kRemoval)->value, fc, a.span(*r));
      for (auto u = unnamed_.begin(); u != unnamed_.end() && !seg_value.empty(); ++u)
        if (u->segment == seg_value) {
          set_size(*target, u->mm, fc / 2, u->size_span);
          if (u->removal && !target->removal.value)
            target->removal.set(a.tag_of(*u->removal, Cat::kRemoval)->value, fc / 2,
                                a.span(*u->removal));
          unnamed_.erase(u);
          break;
        }
    }
    // "距肛门约30cm见一枚0.4cm息肉" … "2.（乙状结肠）管状腺瘤": the specimen's site is the polyp's.
    // (Not a group described over several segments: "横结肠至乙状结肠散在多发炎性息肉".)
    if (!target->segment.value && !seg_value.empty() && last_site && target->quantity == 1)
      target->segment.set(seg_value, fc / 2, a.span(*last_site));
    if (index >= 1 && !correcting_)
      specimen_of_.emplace(index, static_cast<std::size_t>(target - polyps.data()));
    give(*target);
    last_entry_ = target;
    // Polyps described together and sent in one jar share the result.
    group_of_.resize(polyps.size(), -1);
    const int g = group_of_[static_cast<std::size_t>(target - polyps.data())];
    // (Not a result that names its polyp by size.)
    for (std::size_t i = 0; g >= 0 && named_mm == 0 && i < polyps.size(); ++i)
      if (group_of_[i] == g && !polyps[i].histology.value) give(polyps[i]);
  }

  struct Snapshot {
    std::size_t affirmed = 0, possible = 0, polyps = 0;
    SectionKind kind = SectionKind::kFindings;
    bool valid = false;
  };
  // Everything read since `snap` was a lesion that is none: its mentions become negations.
  void undo_since(const Snapshot& snap) {
    negated.insert(negated.end(), affirmed.begin() + static_cast<std::ptrdiff_t>(snap.affirmed),
                   affirmed.end());
    negated.insert(negated.end(), possible.begin() + static_cast<std::ptrdiff_t>(snap.possible),
                   possible.end());
    affirmed.resize(snap.affirmed);
    affirmed_kinds.resize(snap.affirmed);
    possible.resize(snap.possible);
    if (polyps.size() > snap.polyps) polyps.resize(snap.polyps);
    if (bounds_.size() > snap.polyps) bounds_.resize(snap.polyps);
    if (group_of_.size() > snap.polyps) group_of_.resize(snap.polyps);
    if (item_of_.size() > snap.polyps) item_of_.resize(snap.polyps);
    if (origin_of_.size() > snap.polyps) origin_of_.resize(snap.polyps);
  }

  void count_said(const Quantity& q) {
    if (q.n > 0) stated = std::max<std::int64_t>(stated, q.n);
    if (q.n < 0) vague_bound = std::max<std::int64_t>(vague_bound, q.bound);
  }

  // Report-level decision.
  void decide() {
    // The count (GUIDELINE.md 6): the described polyps (a vague group counts its lower bound)
    // or an exact total said elsewhere, whichever is larger; a vague word elsewhere ("multiple
    // polyps" in the impression) only raises a smaller count, and then makes it a bound.
    // Only "lesion", "病变" affirmed in a report about another disease ("于病变处活检" after the
    // ulcers): the disease's lesion, no polyp.
    if (!specific_affirmed_ && non_polyp_seen_ && polyps.empty()) affirmed.clear();
    // Only "a small elevated lesion" affirmed, a polyp doubted elsewhere ("a polyp could not be
    // excluded"): the lesion is the doubted polyp.
    if (!specific_affirmed_ && !possible.empty()) affirmed.clear();
    if (polyps.empty() && !impression_polyps_.empty()) polyps = impression_polyps_;
    bounds_.resize(polyps.size(), 0);
    std::int64_t described = 0;
    bool exact = true;
    for (std::size_t i = 0; i < polyps.size(); ++i) {
      const auto& p = polyps[i];
      if (p.quantity > 0) described += p.quantity;
      if (p.quantity < 0) exact = false, described += std::max(2, bounds_[i]);
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
      std::int64_t n = std::max<std::int64_t>({described, stated, 1});
      if (vague_bound > n) n = vague_bound, exact = false;
      out.polyp_count.value = n;
      out.count_exact = exact;
      // One polyp without a segment takes the impression's only segment no other polyp has
      // ("距肛门15cm处见一息肉" … "诊断：直乙交界息肉").
      std::vector<std::string> segs = impression_segments_;
      std::sort(segs.begin(), segs.end());
      segs.erase(std::unique(segs.begin(), segs.end()), segs.end());
      const auto bare = std::count_if(polyps.begin(), polyps.end(),
                                      [](const PolypLabel& p) { return !p.segment.value; });
      const auto bare_single = std::count_if(polyps.begin(), polyps.end(), [](const PolypLabel& p) {
        return !p.segment.value && p.quantity == 1;
      });
      if (bare == 1 && bare_single == 1 && segs.size() == 1 &&
          std::none_of(polyps.begin(), polyps.end(),
                       [&](const PolypLabel& p) { return p.segment.value == segs[0]; }))
        for (auto& p : polyps)
          if (!p.segment.value) p.segment.set(segs[0], fc / 2, {});
      out.polyp_count.confidence = out.count_exact ? fc : fc / 2;
      for (const auto& p : polyps)
        out.polyp_count.evidence.insert(out.polyp_count.evidence.end(), p.evidence.begin(),
                                        p.evidence.end());
    } else {
      polyps.clear();
      // A report that resolves its suspected lesion ("…was a fold", a correcting addendum)
      // leaves no doubt behind.
      if (resolved_any_) {
        negated.insert(negated.end(), possible.begin(), possible.end());
        possible.clear();
      }
      if (!possible.empty()) {
        present.value = "uncertain";
        present.confidence = agg.conf_uncertain;
        present.evidence = possible;
      } else if (!negated.empty() || resolved_any_ || (!normal.empty() && !non_polyp_seen_)) {
        // (A lesion the report resolves as none — "a follicle, not a polyp" — addresses polyps.)
        // ("未见异常" of one segment in a report about colitis says nothing about polyps.)
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
    // None seen through a poor preparation or short of the caecum: not assessable (GUIDELINE 4);
    // so is an exam that found nothing at all (no other finding either) for that reason.
    const bool nothing = present.value == "not_mentioned" && !non_polyp_seen_;
    if ((present.value == "negative" || nothing) &&
        (limited_ || (out.bowel_prep.value && *out.bowel_prep.value == "poor") ||
         (out.caecum_reached.value && !*out.caecum_reached.value))) {
      present.value = "uncertain";
      present.confidence = agg.conf_uncertain;
      out.polyp_count = {};
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
  std::int64_t stated = 0;          // the largest exact total said outside the descriptions
  std::int64_t vague_bound = 0;     // the largest lower bound said outside them ("multiple")
  std::vector<int> bounds_;         // per polyp: the lower bound of a vague group
  Snapshot before_;                 // the state before the previous sentence
  bool resolved_any_ = false;       // a current sentence said a suspected lesion was none
  bool limited_ = false;            // the mucosa could not be seen well enough
  bool specific_affirmed_ = false;  // a polyp word other than a generic one was affirmed
  std::map<int, std::size_t> specimen_of_;  // specimen number → the polyp its result went to
  std::size_t last_batch_ = 0;      // the first polyp of the last sentence that described any
  std::vector<Unnamed> unnamed_;
  std::size_t found_sizes_ = 0;     // sizes find_sizes read in this sentence's text    // findings
                                    // that named no polyp, with a site and a size
  bool correcting_ = false;         // this pathology sentence corrects a named specimen
  bool list_head_ = false;          // the last sentence was "Polyps:" or an item under it
  const Match* inline_pathology_ = nullptr;  // "path showed TA" in a findings sentence
  const Match* scar_segment_ = nullptr;      // the segment of the last scar named
  bool block_open_ = false;  // the last sentence was "Polyp 1" or a "Key: value" line under it
  int block_ = -1;           // the polyp of that block, once a line described it
  bool sentence_possible_ = false;         // the current sentence doubts a polyp
  std::int32_t first_possible_ = -1;       // its first doubted mention
  std::vector<PolypLabel> candidates_;     // doubted polyps, described
  std::vector<std::size_t> candidate_at_;  // where each would stand among the polyps
  int size_column_ = -1;                   // the table column of sizes without units, or −1
  double size_factor_ = 1;                 // its unit in mm
  PolypLabel* last_entry_ = nullptr;       // the polyp the last pathology entry went to
  Field<std::string> heading_segment_;     // "Right colon:" heading the polyps under it
  std::vector<int> item_of_;               // per polyp: its findings item number, or 0
  std::vector<std::int32_t> origin_of_;    // per polyp: its sentence's origin, or −1
  int item_no_ = 0;                        // the findings item being read, or 0
  std::size_t last_end_ = 0;               // where the sentence before ended (bytes)
  std::vector<int> group_of_;              // per polyp: the description it was split from, or −1
  int groups_ = -1;
  bool last_candidate_ = false;                   // the last description was a doubted polyp
  std::vector<std::string> impression_segments_;  // segments of affirmed impression mentions
  std::vector<PolypLabel> impression_polyps_;     // stands in when the findings describe none
  bool non_polyp_seen_ = false;                   // a current sentence names another finding
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
