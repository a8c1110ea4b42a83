// The rule-based report labeller: sections → sentences → phrase matches → ConText states →
// polyp descriptions → report-level labels. See endoked/report/rules.h.
#include "endoked/report/rules.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string_view>

#include "endoked/core/error.h"
#include "endoked/core/text.h"
#include "labelling.h"

namespace endoked::report {

using detail::Analysis;
using detail::is_cjk_lead;
using detail::Sentence;
using detail::Work;

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

namespace detail {

void Labelling::sentence(const Sentence& s) {
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

void Labelling::track_item(const Sentence& s) {
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

void Labelling::sentence_body(const Sentence& s) {
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
      std::any_of(mb, me, [&](const Match& m) { return a.tag_of(m, Cat::kSegment) != nullptr; }) &&
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
  const bool other_finding =
      std::any_of(mb, me, [&](const Match& m) { return a.tag_of(m, Cat::kIncidental) != nullptr; });
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

const Match* Labelling::nearest(It mb, It me, Cat c, std::int32_t anchor) const {
  const Match* best = nullptr;
  for (auto it = mb; it != me; ++it)
    if (a.tag_of(*it, c) &&
        (!best || std::abs(it->first - anchor) < std::abs(best->first - anchor)))
      best = &*it;
  return best;
}

bool Labelling::elsewhere(It mb, It target) const {
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

bool Labelling::year_at(std::int32_t k) const {
  const Token& t = w.tokens[static_cast<std::size_t>(k)];
  if (!(t.type == TokType::kNumber && t.end - t.begin == 4 && t.number >= 1950 && t.number <= 2035))
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

const Mention* Labelling::read_mentions(const Sentence& s, It mb, It me,
                                        std::vector<Mention>& mentions) {
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
    Mention m{it->first, it->last, t ? t->value : "histology", a.state_of(s, it->first, it->last)};
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
    if (m.what != "generic" && m.what != "polypectomy" && m.what != "history" && !m.state.negated &&
        !m.state.historical && !m.state.family && !m.state.hypothetical)
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

void Labelling::quality(const Sentence& s, It mb, It me) {
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
      for (std::int32_t k = it->last + 1; k + 1 < std::min(s.last, it->last + 12) && !voted; ++k) {
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

void Labelling::find_sizes(const Sentence& s, It mb, It me, std::vector<SizeHit>& sizes) const {
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
            if (n->number < 10 && jt->first - 2 >= s.first && token_text(jt->first - 1) == "point")
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
        const bool leads = k - 3 < s.first || token_text(k - 3) == ":" || token_text(k - 3) == "-";
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

void Labelling::table_sizes(const Sentence& s) {
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
    const std::string_view cell(w.lower.data() + cells[c].first, cells[c].second - cells[c].first);
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
  if (size_column_ < 0 || size_column_ >= static_cast<int>(cells.size()) || !sizes_.empty()) return;
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

std::string_view Labelling::token_text(std::int32_t k) const {
  const Token& t = w.tokens[static_cast<std::size_t>(k)];
  return std::string_view(w.lower).substr(static_cast<std::size_t>(t.begin),
                                          static_cast<std::size_t>(t.end - t.begin));
}

bool Labelling::ends_with(const Sentence& s, std::string_view text) const {
  return s.last > s.first && token_text(s.last - 1) == text;
}

void Labelling::remember_unnamed(const Sentence& s) {
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

std::string_view Labelling::text_of(const Sentence& s) const {
  const Span whole = a.sentence_span(s);
  return std::string_view(w.lower).substr(static_cast<std::size_t>(whole.begin),
                                          static_cast<std::size_t>(whole.end - whole.begin));
}

int Labelling::specimen_number(std::string_view said, std::size_t at, bool letters) {
  while (at < said.size() && said[at] == ' ') ++at;
  if (at >= said.size() ||
      (at + 1 < said.size() && std::isalnum(static_cast<unsigned char>(said[at + 1]))))
    return 0;
  if (std::isdigit(static_cast<unsigned char>(said[at]))) return said[at] - '0';
  if (letters && said[at] >= 'a' && said[at] <= 'h') return said[at] - 'a' + 1;
  return 0;
}

void Labelling::set_size(PolypLabel& p, double mm, double conf, Span where) const {
  p.size_mm = {};
  p.size_class = {};
  p.size_mm.set(mm, conf, where);
  p.size_class.set(size_class(mm), conf, where);
}

const Match* Labelling::dysplasia_after(const Sentence& s, It hist, It to) const {
  for (auto it = hist + 1; it != to; ++it)
    if (a.tag_of(*it, Cat::kDysplasia) && !a.state_of(s, it->first, it->last).negated) return &*it;
  return nullptr;
}

bool Labelling::resolves(const Sentence& s, const Match& m) const {
  if (!a.tag_of(m, Cat::kResolved)) return false;
  for (std::int32_t k = std::max(s.first, m.first - 2); k < m.first; ++k) {
    const std::string_view v = token_text(k);
    if (v == "versus" || v == "vs" || v == "or") return false;
  }
  return true;
}

bool Labelling::starts_item(const Sentence& s) const {
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

const Tag* Labelling::match_at_token(std::int32_t k, Cat c, It mb, It me, bool by_last) const {
  for (auto it = mb; it != me; ++it)
    if ((by_last ? it->last : it->first) == k)
      if (const Tag* t = a.tag_of(*it, c)) return t;
  return nullptr;
}

bool Labelling::match_starts_sentence(const Sentence& s, It mb, It me, std::int32_t k) const {
  for (auto it = mb; it != me; ++it)
    if (it->last == k) return it->first == s.first;
  return false;
}

void Labelling::fill_block(const Sentence& s, It mb, It me) {
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

bool Labelling::clause_break_between(std::int32_t from, std::int32_t to) const {
  for (std::int32_t k = from + 1; k < to; ++k)
    if (w.tokens[static_cast<std::size_t>(k)].type == TokType::kClauseBreak) return true;
  return false;
}

}  // namespace detail

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
  detail::Labelling(L, a, w, out).run();
  return out;
}

}  // namespace endoked::report
