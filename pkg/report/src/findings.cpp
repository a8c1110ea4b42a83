// The rules labeller's polyp descriptions: how many a sentence names, where, how large, how
// removed (Labelling, labelling.h).

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string_view>

#include "endoked/core/error.h"
#include "endoked/core/text.h"
#include "labelling.h"

namespace endoked::report::detail {

Labelling::Quantity Labelling::find_quantity(const Sentence& s, It mb, It me, bool affirmed,
                                             std::int32_t anchor,
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
      if ((k > s.first && token_text(k - 1) == "/") || (k + 1 < s.last && token_text(k + 1) == "/"))
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

bool Labelling::segment_counts(const Sentence& s, It mb, It me, std::int32_t anchor,
                               const std::vector<SizeHit>& sizes, const Match* removal) {
  struct Part {
    const Match* seg;
    int n;
  };
  std::vector<Part> parts;
  for (auto it = mb; it != me; ++it) {
    if (!a.tag_of(*it, Cat::kSegment) || it->first <= anchor) continue;
    const std::int32_t k = it->last + 1;
    if (k + 1 >= s.last || w.tokens[static_cast<std::size_t>(k)].type != TokType::kNumber) continue;
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

bool Labelling::several(const Sentence& s, It mb, It me, const std::vector<SizeHit>& sizes,
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
      if (h.first > from && h.last < to && (h.first < ms[i]->first || !size_of[i])) size_of[i] = &h;
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

const Match* Labelling::pick_removal(It mb, It me) const {
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

const Match* Labelling::site(It mb, It me, std::int32_t anchor) const {
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

void Labelling::findings(const Sentence& s, It mb, It me, bool affirmed, std::int32_t anchor,
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
                       said.find("\xE7\x96\xA4\xE7\x97\x95") != std::string_view::npos;    // 疤痕
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
        if (group_of_[i] == g && !polyps[i].removal.value) polyps[i].removal = last.back().removal;
      // "Each was removed by cold snare", "All were resected": every polyp of the sentence
      // before.
      const std::string_view lead = token_text(s.first);
      if (!last_candidate_ &&
          (lead == "each" || lead == "all" || lead == "both" || lead == "they" || lead == "these"))
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

bool Labelling::plural_anchor(std::int32_t anchor) const {
  const std::string_view v = token_text(anchor);
  return v.size() > 3 && v.back() == 's';
}

}  // namespace endoked::report::detail
