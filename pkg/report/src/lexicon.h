#pragma once
// Internal: a compiled lexicon (vocabulary, phrase index) and the tokenizer/phrase matcher the
// rules labeller runs on. See endoked/report/rules.h for the algorithm.
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "endoked/report/labels.h"

namespace endoked::report {

enum class Cat : std::uint8_t {
  kTarget,       // value: "polyp" | "polypectomy" | "generic" ("lesion": a polyp unless the
                 // sentence names a non-polyp finding) | "history" (a past polypectomy)
  kSegment,      // value: segment key
  kGeneric,      // a site word that is not a segment ("colon"): consumes it, nothing else
  kMorphology,   // value: morphology key
  kParis,        // value: Paris type
  kSizeUnit,     // number: millimetres per unit
  kSizeWord,     // value: size class
  kRemoval,      // value: removal key
  kHistology,    // value: histology key (also a polyp mention)
  kDysplasia,    // value: low | high
  kNumber,       // number: the value ("two", "两")
  kMultiple,     // "multiple", "scattered", "多发"
  kClassifier,   // a counting word after a number ("枚")
  kModifier,     // value: negated | possible | historical | family | hypothetical; dir
  kTerminate,    // ends a modifier's scope
  kPseudo,       // looks like a trigger, is not
  kPrepTerm,     // "bowel preparation"
  kPrepQuality,  // value: excellent | good | fair | poor
  kBbps,         // "BBPS" (a number follows)
  kCaecumYes,
  kCaecumNo,
  kNormalExam,  // "normal colonoscopy"
  kNonPolyp,    // a finding that is never a polyp ("colitis", "angioectasia")
  kIncidental,  // one seen in passing ("diverticula", "haemorrhoids"): no polyp either, but not
                // what an exam that saw nothing else was about
  kDistance,    // "from the anal verge" (after a length), "距肛门" (before): not a size; dir
  kAtLeast,     // "at least" (before a number), "以上" (after): the count is a lower bound; dir
  kResolved,    // "was a fold", "考虑为皱襞": the suspected lesion of the sentence is none
  kHistorySentence,  // "years ago", "年前": every mention after it in the sentence is history
  kCurrent,          // "today", "本次": ends a history_sentence scope
  kLandmark,         // "near", "近": the segment after it is a landmark, not the site
  kWholeColon,       // "全结肠", "throughout the colon": a group there has no one segment
  kPathInline,  // "path showed", "病理提示": a histology after it in a findings sentence is one
  kOtherOrgan,  // "stomach", "胃体": a polyp named after it there is no colon polyp
  kLimited,     // "views were inadequate", "部分黏膜无法观察": not assessable
};

enum class Dir : std::uint8_t { kForward, kBackward, kBoth };
enum class Mod : std::uint8_t { kNegated, kPossible, kHistorical, kFamily, kHypothetical };

struct Tag {
  Cat cat = Cat::kTarget;
  Dir dir = Dir::kForward;
  Mod mod = Mod::kNegated;
  std::string value;
  double number = 0;
};

struct Phrase {
  std::vector<std::int32_t> tokens;
  std::vector<Tag> tags;
  std::string text;
};

enum class SectionKind : std::uint8_t {
  kFindings,
  kImpression,
  kPathology,
  kIndication,
  kPreparation,
  kIgnore
};

enum class TokType : std::uint8_t { kWord, kNumber, kPunct, kOther, kSentenceBreak, kClauseBreak };

struct Token {
  std::int32_t begin = 0, end = 0;  // bytes
  std::int32_t id = -1;             // vocabulary id, −1 when unknown
  TokType type = TokType::kOther;
  double number = 0;
};

struct Match {
  std::int32_t first = 0, last = 0;  // token indices, inclusive
  std::int32_t phrase = 0;
};

struct Aggregation {
  int min_affirmed = 1;
  int cjk_min = 4;
  double conf_positive = 0.9, conf_positive_confirmed = 0.97, conf_negative = 0.95,
         conf_negative_normal_only = 0.85, conf_uncertain = 0.6, conf_not_mentioned = 0.5,
         conf_conflict_penalty = 0.15, conf_field = 0.9;
  std::vector<std::pair<int, std::string>> bbps_min;  // (minimum total, prep value), descending
};

class Lexicon {
 public:
  std::string language, version;
  int typo_min_length = 6;
  int scope_tokens = 8;
  std::string sentence_breaks, clause_breaks;  // ASCII characters
  std::vector<std::string> sentence_breaks_utf8, clause_breaks_utf8;
  SectionKind default_section = SectionKind::kFindings;
  std::unordered_map<std::string, SectionKind> headers;  // lower-cased header → kind
  std::set<std::size_t> header_lengths;                  // typo lookups only at these lengths
  std::vector<Phrase> phrases;
  std::vector<std::vector<std::int32_t>> by_first;  // token id → phrases, longest first
  std::unordered_map<std::string, std::int32_t> vocab;  // building; lookups use the table
  std::vector<std::int32_t> table;                      // open addressing: word id or −1
  std::uint64_t table_mask = 0;
  Aggregation aggregation;

  /// Splits `lower` (the report, ASCII lower-cased) into tokens. `scratch` is reused.
  void tokenize(const std::string& lower, std::size_t begin, std::size_t end,
                std::vector<Token>& out, std::string& scratch) const;
  /// Leftmost-longest phrase matches over tokens [first, last) (never across a sentence
  /// break).
  void match(const std::vector<Token>& tokens, std::size_t first, std::size_t last,
             std::vector<Match>& out) const;
  std::int32_t lookup(std::string_view token) const;
  std::vector<std::string> words;  // id → word
  // A word with one letter dropped → the word ("descendng" → "descending"); −1 when two words
  // drop to the same text. Only words longer than typo_min_length.
  std::unordered_map<std::string, std::int32_t> dropped;
  // One character read as another (traditional → simplified Chinese: 腸 → 肠, 瘜 → 息).
  std::unordered_map<std::string, std::string> fold;
  // Words that refer back ("the", "this"), and, prefixed with '|', words that cut a count from
  // its noun ("were", "from"): `anaphora` and `count_breakers` in the file.
  std::set<std::string> anaphora;
  // Words whose full stop ends no sentence ("approx.", "vs.", "dr.").
  std::set<std::string> abbreviations;
  // "the first", "the second" after "two polyps were found": a polyp each (`ordinals`).
  std::set<std::string> ordinals;
  // "Polyp 1 -", "Specimen 2:", "Pot 3": the number names the polyp (`specimen_words`).
  std::set<std::string> specimen_words;
  // "specimen B is reclassified as …", "标本1…修正诊断为…": a result that replaces the one
  // given before for that specimen (`corrections`, found anywhere in the sentence's text).
  std::vector<std::string> corrections;
  /// Compiles phrases into token ids (adds words to the vocabulary).
  void add_phrase(const std::string& text, Tag tag);
  void finish();
};

}  // namespace endoked::report
