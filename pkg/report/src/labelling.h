#pragma once
// Internal: one report's labelling by the rules labeller (RulesLabeller::label), its methods in
// rules.cpp (sentences, mentions, quality, sizes, block lines), findings.cpp (polyp descriptions:
// counts, sites, sizes, removal) and pathology.cpp (pathology entries, the report-level
// decision).
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "analysis.h"
#include "endoked/report/rules.h"
#include "lexicon.h"

namespace endoked::report::detail {

struct Mention {
  std::int32_t first = 0, last = 0;  // tokens, inclusive
  std::string what;                  // polyp | polypectomy | histology
  MentionState state;
};

struct SizeHit {
  double mm = 0;
  std::int32_t first = 0, last = 0;
};

inline bool current(SectionKind k) {
  return k == SectionKind::kFindings || k == SectionKind::kImpression ||
         k == SectionKind::kPathology;
}

template <typename T>
void set_field(Field<T>& f, T v, double c, Span s) {
  if (!f.value) f.set(std::move(v), c, s);
}

inline std::string paris_morphology(const std::string& paris) {
  if (paris == "0-Ip") return "pedunculated";
  if (paris == "0-Isp" || paris == "0-Is") return "sessile";
  return "flat";
}

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

  // "乙状结肠距肛门约30cm见一处约0.6cm黏膜粗糙、发红，取活检2块" names no polyp, but a site, a
  // size and what was done: a polyp that a later histology of that segment brings to light is
  // this one.
  struct Unnamed {
    std::string segment;
    double mm = 0;
    Span seg_span, size_span;
    const Match* removal = nullptr;
  };
  // How many polyps a sentence speaks of: n > 0 exactly n; n < 0 at least `bound` ("multiple"
  // 2, "at least 5" 5, "two or three" 2, "10余枚" 10, "3枚以上" 3); n == 0 not said.
  struct Quantity {
    int n = 0, bound = 0;
  };
  struct Snapshot {
    std::size_t affirmed = 0, possible = 0, polyps = 0;
    SectionKind kind = SectionKind::kFindings;
    bool valid = false;
  };

  void sentence(const Sentence& s);
  // The number of the findings item that sentence `s` belongs to, or 0.
  void track_item(const Sentence& s);
  void sentence_body(const Sentence& s);
  const Match* nearest(It mb, It me, Cat c, std::int32_t anchor) const;
  // A mention in another organ: an other-organ word ("stomach", "胃体") before it in its scope,
  // with no colon segment and no clause break between.
  bool elsewhere(It mb, It target) const;
  // A four-digit year (1950–2035) at token k: "polypectomy in 2019", "2022年".
  // A full date ("2024-03-05", "2024年3月5日", "16/08/2024") stamps this exam or this stay, not
  // the past.
  bool year_at(std::int32_t k) const;
  // Target mentions with their ConText states; returns the first affirmed polyp mention.
  // Sentence-wide rules on top of ConText: a history_sentence phrase or a year makes every
  // later mention history (until "today", "本次" or a terminator); a resolved phrase ("was a
  // fold") negates every mention; a generic word ("lesion") is no polyp beside a non-polyp
  // finding and shares the doubt of a polyp doubted in its sentence.
  const Mention* read_mentions(const Sentence& s, It mb, It me, std::vector<Mention>& mentions);
  // Bowel preparation, caecal intubation and normal-exam phrases.
  void quality(const Sentence& s, It mb, It me);
  // "6 mm", "1.5 cm", ranges "8-9 mm" and products "10 x 8 mm" (the largest number counts).
  void find_sizes(const Sentence& s, It mb, It me, std::vector<SizeHit>& sizes) const;
  // A table whose header names the unit ("| Site | Size (mm) | …"): the bare numbers of that
  // column in the rows below are sizes.
  void table_sizes(const Sentence& s);
  std::string_view token_text(std::int32_t k) const;
  bool ends_with(const Sentence& s, std::string_view text) const;
  void remember_unnamed(const Sentence& s);
  // The lower-cased text of sentence s (what rules that look for a word in it read).
  std::string_view text_of(const Sentence& s) const;
  // The specimen a word names at `at` of `said` ("标本2", "Specimen 3", "specimen B" when
  // `letters`): its number, or 0.
  static int specimen_number(std::string_view said, std::size_t at, bool letters);
  // A polyp's size, with its class.
  void set_size(PolypLabel& p, double mm, double conf, Span where) const;
  // The dysplasia stated for a histology, between it and `to`, not negated.
  const Match* dysplasia_after(const Sentence& s, It hist, It to) const;
  // A phrase that resolves a doubted lesion as none ("was a fold", "not a polyp"), unless it is
  // one side of the doubt itself ("a questionable polyp versus a prominent mucosal fold").
  bool resolves(const Sentence& s, const Match& m) const;
  // "(1)", "1)", "-", "•", "①": a list item.
  bool starts_item(const Sentence& s) const;
  const Tag* match_at_token(std::int32_t k, Cat c, It mb, It me, bool by_last = false) const;
  // The match ending at token k starts the sentence.
  bool match_starts_sentence(const Sentence& s, It mb, It me, std::int32_t k) const;
  // One "Key: value" line of a polyp block fills what the block's polyp still lacks (sizes_
  // holds the line's sizes).
  void fill_block(const Sentence& s, It mb, It me);
  bool clause_break_between(std::int32_t from, std::int32_t to) const;
  // A number right before the target ("two 5 mm polyps"), number + classifier anywhere
  // ("两枚"), or "multiple".
  Quantity find_quantity(const Sentence& s, It mb, It me, bool affirmed, std::int32_t anchor,
                         const std::vector<SizeHit>& sizes) const;
  // "全结肠共见息肉5枚：升结肠2枚（0.3cm、0.5cm），横结肠1枚（0.6cm），乙状结肠2枚（均约0.4cm）":
  // after the polyps are named, segments each with their count and their sizes. One polyp per
  // size where the sizes match the count, else one group with the largest. Returns false
  // (nothing done) when the sentence is not so.
  bool segment_counts(const Sentence& s, It mb, It me, std::int32_t anchor,
                      const std::vector<SizeHit>& sizes, const Match* removal);
  // Several polyps in one sentence, each after its own segment
  // ("右半结肠见一枚约0.5cm息肉，左半结肠 见一枚约0.4cm息肉，均予冷圈套切除";
  // "升结肠一枚息肉，横结肠一枚息肉，大小分别约0.8cm、1.2cm"): one polyp each, with the sizes
  // between them (or, listed after all of them, in order), the sentence's removal shared. Returns
  // false (nothing done) when the sentence is not so.
  bool several(const Sentence& s, It mb, It me, const std::vector<SizeHit>& sizes,
               const Match* removal);
  // The most specific removal of a sentence: a named method over a bare "removed", which is
  // over "not removed" and a biopsy; forceps with a biopsy and no word of removal are a biopsy.
  const Match* pick_removal(It mb, It me) const;
  // A findings sentence describes a new polyp, states a count, or adds a removal to the last.
  // The segment nearest the polyp that is its site, not a landmark ("升结肠近肝曲",
  // "ascending colon 5 cm from the ileocaecal valve").
  const Match* site(It mb, It me, std::int32_t anchor) const;
  void findings(const Sentence& s, It mb, It me, bool affirmed, std::int32_t anchor,
                const std::vector<SizeHit>& sizes, const Quantity& quantity);
  // The mention at token `anchor` is an English plural ("polyps", "adenomas").
  bool plural_anchor(std::int32_t anchor) const;
  // Pathology: every histology of a sentence is one entry ("(1) TA (2) HP", "the transverse
  // polyp was an SSL, the descending colon polyp a TA"); its site is the segments between the
  // previous histology and it, else (first entry) the site line just before ("C. SIGMOID COLON,
  // POLYP:" then "Tubular adenoma"). An entry about several polyps ("polyps x3", "adenomas")
  // goes to every polyp of its sites still without histology.
  void pathology(const Sentence& s, It mb, It me);
  void entry(const Sentence& s, It mb, It me, const Match& hist, const Match* dys, int index,
             const std::vector<std::string>& sites, const Match* last_site, bool plural,
             double named_mm = 0, int times = 0);
  // Everything read since `snap` was a lesion that is none: its mentions become negations.
  void undo_since(const Snapshot& snap);
  void count_said(const Quantity& q);
  // Report-level decision.
  void decide();

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
  std::size_t last_batch_ = 0;    // the first polyp of the last sentence that described any
  std::vector<Unnamed> unnamed_;  // findings that named no polyp, with a site and a size
  std::size_t found_sizes_ = 0;   // sizes find_sizes read in this sentence's text
  bool correcting_ = false;       // this pathology sentence corrects a named specimen
  bool list_head_ = false;        // the last sentence was "Polyps:" or an item under it
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

}  // namespace endoked::report::detail
