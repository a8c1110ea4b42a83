// The rules labeller's pathology entries (each result to its polyp, corrections, collective
// results) and the report-level decision (Labelling, labelling.h).

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string_view>

#include "endoked/core/error.h"
#include "endoked/core/text.h"
#include "labelling.h"

namespace endoked::report::detail {

void Labelling::pathology(const Sentence& s, It mb, It me) {
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
    for (std::int32_t k = hists[i]->first - 1; i > 0 && k >= std::max(s.first, hists[i]->first - 2);
         --k) {
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
        const auto b = static_cast<std::size_t>(w.tokens[static_cast<std::size_t>(s.first)].begin);
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
    entry(s, mb, me, *hists[i], dys, i == 0 ? index : own_index, sites, last_site, plural, named_mm,
          times);
  }
}

void Labelling::entry(const Sentence& s, It mb, It me, const Match& hist, const Match* dys,
                      int index, const std::vector<std::string>& sites, const Match* last_site,
                      bool plural, double named_mm, int times) {
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
      if (seg_value.empty() ? candidates_.size() == 1 : candidates_[i].segment.value == seg_value) {
        // In the order the polyps were described.
        const std::size_t at = std::min(candidate_at_[i], polyps.size());
        polyps.insert(polyps.begin() + static_cast<std::ptrdiff_t>(at), std::move(candidates_[i]));
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

void Labelling::undo_since(const Snapshot& snap) {
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

void Labelling::count_said(const Quantity& q) {
  if (q.n > 0) stated = std::max<std::int64_t>(stated, q.n);
  if (q.n < 0) vague_bound = std::max<std::int64_t>(vague_bound, q.bound);
}

void Labelling::decide() {
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

}  // namespace endoked::report::detail
