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
// Text analysis, per report:
//  1. sections: a line that starts with a known header followed by ':' or '：' opens a section
//     of that kind (findings, impression, pathology, indication, preparation, ignore); text
//     before the first header belongs to `sections.default`;
//  2. tokens: ASCII letter/digit runs (lower-cased; "1.5" is one number), every other code
//     point alone (so Chinese needs no word segmentation); a word of ≥ typo_min_length letters
//     that is not in the lexicon is read as the lexicon word it equals after swapping two
//     adjacent letters, when exactly one such word exists;
//  3. sentences end at `sentence_breaks`; a modifier's scope ends at the sentence end, a
//     terminator, a `clause_breaks` character or after `scope_tokens` tokens;
//  4. phrases are matched leftmost-longest (a pseudo-trigger such as "without difficulty" hides
//     the shorter "without");
//  5. every target mention gets its ConText state; a sentence of a findings section with an
//     affirmed target and a segment, size or morphology describes a polyp (quantity from a
//     number before the target or a count classifier); removal and histology in sentences
//     without a new description attach to the last polyp; pathology entries attach by their
//     number "(k)", else by segment, else become polyps of their own.
// Report-level rules (parameters in the lexicon's `aggregation` block):
//  - positive: ≥ min_affirmed affirmed current mentions (findings, impression, pathology);
//  - uncertain: otherwise ≥ 1 possible mention;
//  - negative: otherwise ≥ 1 negated mention or a normal-exam phrase ("normal colonoscopy");
//  - not_mentioned: otherwise. Historical, family and hypothetical mentions never count.
//  - count: max(sum of described quantities, stated totals "two polyps", "共见息肉两枚");
//    "multiple"/"scattered" without a number gives "at least max(2, described)".
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
