#pragma once
// The rule-based report labeller (the embedded default of the `label` stage).
//
// All vocabulary lives in lexicon files (YAML; pkg/report/lexicon/en.yaml and zh.yaml are
// the shipped ones): section headers, targets, colon segments, sizes, morphology, Paris types,
// removal methods, histology, dysplasia, numbers, bowel preparation, caecal intubation, and the
// ConText modifiers (Harkema et al., J Biomed Inform 2009; NegEx, Chapman et al. 2001):
// negated / possible / historical / family / hypothetical triggers acting forward or backward,
// terminators and pseudo-triggers.
//
// Text analysis, per report (recipes/label/GUIDELINE.md says what it must conclude):
//  1. sections: a line that starts with a known header followed by ':' or '：' opens a section
//     of that kind (findings, impression, pathology, indication, preparation, ignore); also a
//     bracketed header (【检查所见】), a qualified one ("ADDENDUM (pathology, …)", "Addendum,
//     17 June", "Findings 所见") and one after a full stop inside a line ("Colonoscopy. Indic:");
//     an indication, preparation or ignore header with text on its line covers that line only;
//     text before the first header belongs to `sections.default`;
//  2. tokens: ASCII letter/digit runs (lower-cased; "1.5" is one number), every other code
//     point alone (so Chinese needs no word segmentation; `fold` reads traditional characters
//     as simplified); a word of ≥ typo_min_length letters that is not in the lexicon is read
//     as the one lexicon word it equals after swapping two adjacent letters, dropping a doubled
//     letter or restoring a dropped one; "?" before a word queries it;
//  3. sentences end at `sentence_breaks` (not after `abbreviations`, nor "1." opening an item;
//     "(2)" starts one); a modifier's scope ends at the sentence end, a terminator, a
//     `clause_breaks` character (unless a listed finding follows it: "未见息肉，肿物") or after
//     `scope_tokens` tokens; backward "possible" triggers cross clause breaks;
//  4. phrases are matched leftmost-longest (a pseudo-trigger such as "without difficulty" hides
//     the shorter "without");
//  5. every target mention gets its ConText state, then sentence-wide rules: a
//     `history_sentence` phrase or a bare year makes later mentions history, a `resolved` phrase
//     ("was a fold") negates the sentence's mentions (and the sentence before's), a generic
//     word ("lesion") is no polyp beside a `non_polyp`/`incidental` finding and shares the
//     doubt of a doubted polyp, a mention after an `other_organ` word is not in the colon;
//  6. a findings sentence with an affirmed target and a segment, size or morphology describes
//     a polyp (quantity from a number or `at_least` bound before the target, a count
//     classifier, "multiple"; sizes skip `distance`s and lengths ≥ 10 cm); items of a list or
//     table, "Polyp 1" blocks and several segment-led polyps in one sentence describe one polyp
//     each; "The polyp was sessile" completes the last one; a doubted polyp is kept aside for
//     pathology to confirm; removal in a sentence without a new description goes to the last
//     polyp; every histology of a pathology sentence is an entry that goes to the polyp it
//     numbers, else its segment, else the first polyp without histology, else a confirmed
//     doubted polyp, else a polyp of its own.
// Report-level rules (parameters in the lexicon's `aggregation` block):
//  - positive: ≥ min_affirmed affirmed current mentions (findings, impression, pathology),
//    unless only generic words were affirmed beside another disease or a doubted polyp;
//  - uncertain: otherwise ≥ 1 possible mention, unless a resolved phrase settled it;
//  - negative: otherwise ≥ 1 negated mention or a normal-exam phrase ("normal colonoscopy");
//  - not_mentioned: otherwise. Historical, family and hypothetical mentions never count.
//    Negative (or nothing found at all) with a poor preparation or short of the caecum is
//    uncertain.
//  - count: the described polyps (a vague group counts its bound) or an exact total said
//    elsewhere, whichever is larger; a vague word elsewhere only raises a smaller count and
//    then makes it "at least".
//  - history_of_polypectomy: a historical mention of a polyp or polypectomy anywhere.
// Thread safety: a RulesLabeller is immutable after construction; label() may run on many
// threads at once.
#include <memory>
#include <string>
#include <vector>

#include "endoked/report/labels.h"

namespace endoked::report {

class Lexicon;

/// Parses a lexicon file's text. Throws endoked::Error naming `origin` and the key.
std::shared_ptr<const Lexicon> load_lexicon(const std::string& yaml_text,
                                            const std::string& origin);
/// The lexicon file's `language` ("en", "zh", …).
const std::string& lexicon_language(const Lexicon& lexicon);

/// The ConText state of one target mention.
struct MentionState {
  bool negated = false, possible = false, historical = false, family = false, hypothetical = false;
  std::vector<Span> triggers;  // the modifier phrases that apply
};

class RulesLabeller {
 public:
  /// `lexicons` holds one lexicon per language (each file's `language` key). `language`:
  /// "auto" (zh when the report has more CJK characters than `aggregation.cjk_min`, else en)
  /// or a fixed language.
  RulesLabeller(std::vector<std::shared_ptr<const Lexicon>> lexicons,
                std::string language = "auto");
  ~RulesLabeller();

  ExamLabels label(const std::string& report) const;

  /// ConText on one sentence for a target given by its byte span (the NegEx evaluation).
  MentionState context(const std::string& sentence, Span target, const std::string& language) const;

  /// "rules-1/en-2,zh-1"
  std::string version() const;

 private:
  const Lexicon& pick(const std::string& report) const;
  std::vector<std::shared_ptr<const Lexicon>> lexicons_;
  std::string language_;
};

}  // namespace endoked::report
