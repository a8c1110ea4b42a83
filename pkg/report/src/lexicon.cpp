// Lexicon files → compiled phrase index; the tokenizer and the leftmost-longest matcher.
#include "lexicon.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>

#include "endoked/core/error.h"
#include "endoked/core/text.h"
#include "endoked/report/rules.h"

namespace endoked::report {
namespace {

bool is_alpha(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(unsigned char c) {
  return c >= '0' && c <= '9';
}

// A question mark followed directly by a word ("?3mm polyp", "息肉？皱襞") queries that word;
// one followed by a space, a closing bracket or the end ends a sentence.
bool query_follows(const std::string& s, std::size_t i, std::size_t end) {
  if (i >= end) return false;
  const auto c = static_cast<unsigned char>(s[i]);
  if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ')' || c == ']' || c == '"')
    return false;
  if (c >= 0x80)
    return s.compare(i, 3, "\xEF\xBC\x89") != 0 && s.compare(i, 3, "\xE3\x80\x82") != 0 &&
           s.compare(i, 3, "\xEF\xBC\x9F") != 0;  // not ） 。 ？
  return c != '.' && c != ',' && c != ';' && c != '?' && c != ':';
}

std::size_t utf8_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;  // a stray continuation byte: one token of its own
}

// Reads a lexicon file, rejecting keys it does not know (a misspelt key would silently drop
// vocabulary).
class Reader {
 public:
  Reader(const std::string& origin) : origin_(origin) {}

  [[noreturn]] void fail(const YAML::Node& n, const std::string& key,
                         const std::string& what) const {
    ENDOKED_FAIL("lexicon ", origin_, ":", n.Mark().line + 1, ":", n.Mark().column + 1, ": '", key,
                 "' ", what);
  }
  void keys(const YAML::Node& map, const std::string& where,
            const std::set<std::string>& known) const {
    if (!map) return;
    if (!map.IsMap()) fail(map, where, "must be a mapping");
    for (const auto& kv : map) {
      const std::string k = kv.first.as<std::string>();
      if (!known.count(k))
        fail(kv.first, where.empty() ? k : where + "." + k, "is not a lexicon key");
    }
  }
  std::vector<std::string> list(const YAML::Node& n, const std::string& key) const {
    std::vector<std::string> out;
    if (!n) return out;
    if (!n.IsSequence()) fail(n, key, "must be a list of phrases");
    for (const auto& e : n) out.push_back(e.as<std::string>());
    return out;
  }
  // {value: [phrases]} with values checked against `allowed` (empty: any).
  void value_lists(const YAML::Node& n, const std::string& key,
                   const std::vector<std::string>& allowed,
                   const std::function<void(const std::string&, const std::string&)>& add) const {
    if (!n) return;
    if (!n.IsMap()) fail(n, key, "must map each value to a list of phrases");
    for (const auto& kv : n) {
      const std::string v = kv.first.as<std::string>();
      if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), v) == allowed.end())
        fail(kv.first, key + "." + v, "is not an allowed value");
      for (const auto& p : list(kv.second, key + "." + v)) add(v, p);
    }
  }

 private:
  std::string origin_;
};

SectionKind section_kind(const std::string& name, const Reader& r, const YAML::Node& n) {
  static const std::unordered_map<std::string, SectionKind> k = {
      {"findings", SectionKind::kFindings},       {"impression", SectionKind::kImpression},
      {"pathology", SectionKind::kPathology},     {"indication", SectionKind::kIndication},
      {"preparation", SectionKind::kPreparation}, {"ignore", SectionKind::kIgnore}};
  auto it = k.find(name);
  if (it == k.end())
    r.fail(n, "sections",
           "names section kind '" + name +
               "' (findings, impression, pathology, indication, preparation, ignore)");
  return it->second;
}

}  // namespace

namespace {
std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 1469598103934665603ull;
  for (const char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return h;
}
}  // namespace

std::int32_t Lexicon::lookup(std::string_view token) const {
  if (table.empty()) {  // while building
    auto it = vocab.find(std::string(token));
    return it == vocab.end() ? -1 : it->second;
  }
  for (std::uint64_t i = fnv1a(token) & table_mask;; i = (i + 1) & table_mask) {
    const std::int32_t id = table[i];
    if (id < 0) return -1;
    if (words[static_cast<std::size_t>(id)] == token) return id;
  }
}

void Lexicon::tokenize(const std::string& lower, std::size_t begin, std::size_t end,
                       std::vector<Token>& out, std::string& scratch) const {
  std::size_t i = begin;
  while (i < end) {
    const unsigned char c = static_cast<unsigned char>(lower[i]);
    Token t;
    t.begin = static_cast<std::int32_t>(i);
    if (is_digit(c)) {
      std::size_t j = i;
      while (j < end && is_digit(static_cast<unsigned char>(lower[j]))) ++j;
      if (j + 1 < end && lower[j] == '.' && is_digit(static_cast<unsigned char>(lower[j + 1]))) {
        ++j;
        while (j < end && is_digit(static_cast<unsigned char>(lower[j]))) ++j;
      }
      t.type = TokType::kNumber;
      scratch.assign(lower, i, j - i);
      t.number = std::strtod(scratch.c_str(), nullptr);
      t.id = lookup(std::string_view(lower).substr(i, j - i));
      i = j;
    } else if (is_alpha(c)) {
      std::size_t j = i;
      while (j < end && is_alpha(static_cast<unsigned char>(lower[j]))) ++j;
      t.type = TokType::kWord;
      t.id = lookup(std::string_view(lower).substr(i, j - i));
      if (t.id < 0 && static_cast<int>(j - i) >= typo_min_length) {
        scratch.assign(lower, i, j - i);
        // One swap of adjacent letters (the commonest typing error), when unambiguous.
        std::int32_t found = -1;
        int hits = 0;
        for (std::size_t k = 0; k + 1 < scratch.size() && hits < 2; ++k) {
          if (scratch[k] == scratch[k + 1]) continue;
          std::swap(scratch[k], scratch[k + 1]);
          const std::int32_t id = lookup(scratch);
          if (id >= 0 && id != found) {
            found = id;
            ++hits;
          }
          std::swap(scratch[k], scratch[k + 1]);
        }
        // Else one letter typed twice ("polyyp").
        for (std::size_t k = 1; k < scratch.size() && hits == 0; ++k) {
          if (scratch[k] != scratch[k - 1]) continue;
          std::string shorter = scratch;
          shorter.erase(k, 1);
          const std::int32_t id = lookup(shorter);
          if (id >= 0 && static_cast<int>(shorter.size()) >= typo_min_length - 1) {
            found = id;
            hits = 1;
          }
        }
        if (hits == 0) {  // or one letter too few ("descendng")
          auto d = dropped.find(scratch);
          if (d != dropped.end() && d->second >= 0) found = d->second, hits = 1;
        }
        if (hits == 1) t.id = found;
      }
      i = j;
    } else if (c < 0x80) {
      ++i;
      if (c == ' ' || c == '\t' || c == '\r') continue;
      // "?3mm polyp", "- ? polyp ? fold": a query, not a break.
      const bool spaced = i >= begin + 2 ? lower[i - 2] == ' ' || lower[i - 2] == '(' : true;
      if (c == '?' && (query_follows(lower, i, end) || (spaced && i + 1 < end && lower[i] == ' ' &&
                                                        query_follows(lower, i + 1, end)))) {
        t.type = TokType::kPunct;
        t.id = lookup("?");
      } else if (c == '.' && !out.empty() && out.back().end == static_cast<std::int32_t>(i - 1) &&
                 out.back().type == TokType::kWord &&
                 abbreviations.count(
                     lower.substr(static_cast<std::size_t>(out.back().begin),
                                  static_cast<std::size_t>(out.back().end - out.back().begin)))) {
        t.type = TokType::kPunct;  // "approx. 1 cm", "vs. fold": no sentence end
      } else if (c == '\n' || sentence_breaks.find(static_cast<char>(c)) != std::string::npos) {
        t.type = TokType::kSentenceBreak;
      } else if (clause_breaks.find(static_cast<char>(c)) != std::string::npos) {
        t.type = TokType::kClauseBreak;
      } else {
        t.type = TokType::kPunct;
        t.id = lookup(std::string_view(lower).substr(i - 1, 1));
      }
    } else {
      const std::size_t n = std::min(utf8_length(c), end - i);
      scratch.assign(lower, i, n);
      i += n;
      if (scratch == "\u3000" || scratch == "\u00a0") continue;  // ideographic / no-break space
      // "息肉？皱襞？", "（癌？）": right after a character, a full-width question mark queries it.
      const auto at = static_cast<std::size_t>(t.begin);
      const bool after_char = at >= begin + 3 &&
                              static_cast<unsigned char>(lower[at - 1]) >= 0x80 &&
                              lower.compare(at - 3, 3, "\xE3\x80\x82") != 0;
      if (scratch == "\uFF1F" && (query_follows(lower, i, end) || after_char)) {
        t.type = TokType::kOther;
        t.id = lookup("?");
      } else if (std::find(sentence_breaks_utf8.begin(), sentence_breaks_utf8.end(), scratch) !=
                 sentence_breaks_utf8.end())
        t.type = TokType::kSentenceBreak;
      else if (std::find(clause_breaks_utf8.begin(), clause_breaks_utf8.end(), scratch) !=
               clause_breaks_utf8.end())
        t.type = TokType::kClauseBreak;
      else {
        t.type = TokType::kOther;
        t.id = lookup(scratch);
        if (t.id < 0 && !fold.empty())
          if (auto f = fold.find(scratch); f != fold.end()) t.id = lookup(f->second);
      }
    }
    t.end = static_cast<std::int32_t>(i);
    out.push_back(t);
  }
}

void Lexicon::match(const std::vector<Token>& tokens, std::size_t first, std::size_t last,
                    std::vector<Match>& out) const {
  for (std::size_t i = first; i < last; ++i) {
    const std::int32_t id = tokens[i].id;
    if (id < 0 || static_cast<std::size_t>(id) >= by_first.size()) continue;
    for (const std::int32_t p : by_first[static_cast<std::size_t>(id)]) {
      const auto& pt = phrases[static_cast<std::size_t>(p)].tokens;
      if (i + pt.size() > last) continue;
      bool ok = true;
      for (std::size_t k = 1; k < pt.size() && ok; ++k) ok = tokens[i + k].id == pt[k];
      if (!ok) continue;
      out.push_back(
          {static_cast<std::int32_t>(i), static_cast<std::int32_t>(i + pt.size() - 1), p});
      i += pt.size() - 1;
      break;
    }
  }
}

void Lexicon::add_phrase(const std::string& text, Tag tag) {
  // A query mark ("?", "？") is a phrase of its own (see query_follows).
  const std::string lower = text == "\uFF1F" ? std::string("?") : text::lower(text);
  if (lower == "?") {
    auto it = vocab.find(lower);
    if (it == vocab.end()) it = vocab.emplace(lower, static_cast<std::int32_t>(vocab.size())).first;
    for (auto& q : phrases)
      if (q.tokens == std::vector<std::int32_t>{it->second}) {
        q.tags.push_back(std::move(tag));
        return;
      }
    phrases.push_back({{it->second}, {std::move(tag)}, text});
    return;
  }
  // Tokenize with an empty vocabulary view: every token becomes a new vocabulary word.
  std::vector<Token> toks;
  std::string scratch;
  tokenize(lower, 0, lower.size(), toks, scratch);
  Phrase p;
  p.text = text;
  for (const auto& t : toks) {
    ENDOKED_CHECK(t.type != TokType::kSentenceBreak && t.type != TokType::kClauseBreak, "lexicon ",
                  language, ": phrase '", text, "' contains a sentence or clause break");
    const std::string word =
        lower.substr(static_cast<std::size_t>(t.begin), static_cast<std::size_t>(t.end - t.begin));
    auto it = vocab.find(word);
    if (it == vocab.end()) it = vocab.emplace(word, static_cast<std::int32_t>(vocab.size())).first;
    p.tokens.push_back(it->second);
  }
  if (p.tokens.empty()) return;
  // The same phrase under several categories: one phrase with several tags.
  for (auto& q : phrases)
    if (q.tokens == p.tokens) {
      q.tags.push_back(std::move(tag));
      return;
    }
  p.tags.push_back(std::move(tag));
  phrases.push_back(std::move(p));
}

void Lexicon::finish() {
  words.assign(vocab.size(), {});
  for (const auto& [w, id] : vocab) words[static_cast<std::size_t>(id)] = w;
  for (const auto& [w, id] : vocab) {
    if (static_cast<int>(w.size()) <= typo_min_length ||
        !std::all_of(w.begin(), w.end(),
                     [](char c) { return is_alpha(static_cast<unsigned char>(c)); }))
      continue;
    for (std::size_t k = 0; k < w.size(); ++k) {
      std::string d = w;
      d.erase(k, 1);
      if (vocab.count(d)) continue;
      auto [it, fresh] = dropped.emplace(d, id);
      if (!fresh && it->second != id) it->second = -1;
    }
  }
  std::uint64_t size = 16;
  while (size < 4 * vocab.size()) size *= 2;
  table.assign(size, -1);
  table_mask = size - 1;
  for (const auto& [w, id] : vocab) {
    std::uint64_t i = fnv1a(w) & table_mask;
    while (table[i] >= 0) i = (i + 1) & table_mask;
    table[i] = id;
  }
  by_first.assign(vocab.size(), {});
  for (std::size_t p = 0; p < phrases.size(); ++p)
    by_first[static_cast<std::size_t>(phrases[p].tokens[0])].push_back(
        static_cast<std::int32_t>(p));
  for (auto& v : by_first)
    std::stable_sort(v.begin(), v.end(), [&](std::int32_t a, std::int32_t b) {
      return phrases[static_cast<std::size_t>(a)].tokens.size() >
             phrases[static_cast<std::size_t>(b)].tokens.size();
    });
}

const std::string& lexicon_language(const Lexicon& lexicon) {
  return lexicon.language;
}

namespace {
std::shared_ptr<const Lexicon> build_lexicon(const YAML::Node& root, const std::string& origin);
}  // namespace

std::shared_ptr<const Lexicon> load_lexicon(const std::string& text, const std::string& origin) {
  // yaml-cpp's own errors (syntax, a value of the wrong type) become errors naming the file and
  // the value's line:column, like every other lexicon error.
  try {
    return build_lexicon(YAML::Load(text), origin);
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) ENDOKED_FAIL("lexicon ", origin, ": ", e.msg);
    ENDOKED_FAIL("lexicon ", origin, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg);
  }
}

namespace {
std::shared_ptr<const Lexicon> build_lexicon(const YAML::Node& root, const std::string& origin) {
  Reader r(origin);
  r.keys(root, "", {"language",        "version",       "typo_min_length", "scope_tokens",
                    "sentence_breaks", "clause_breaks", "sections",        "targets",
                    "segments",        "generic_sites", "morphology",      "paris",
                    "size_units",      "size_words",    "removal",         "histology",
                    "dysplasia",       "numbers",       "multiple",        "classifiers",
                    "modifiers",       "terminate",     "pseudo",          "preparation",
                    "caecum_reached",  "normal_exam",   "aggregation",     "non_polyp",
                    "distance",        "at_least",      "resolved",        "history_sentence",
                    "current_exam",    "landmark",      "whole_colon",     "fold",
                    "incidental",      "anaphora",      "count_breakers",  "pathology_inline",
                    "other_organ",     "abbreviations", "ordinals",        "limited_view",
                    "specimen_words",  "corrections"});
  auto lex = std::make_shared<Lexicon>();
  Lexicon& L = *lex;
  ENDOKED_CHECK(root["language"] && root["version"], "lexicon ", origin,
                ": 'language' and 'version' are required");
  L.language = root["language"].as<std::string>();
  L.version = root["version"].as<std::string>();
  if (root["typo_min_length"]) L.typo_min_length = root["typo_min_length"].as<int>();
  if (root["scope_tokens"]) L.scope_tokens = root["scope_tokens"].as<int>();
  for (const auto& [key, ascii, utf8] :
       {std::make_tuple("sentence_breaks", &L.sentence_breaks, &L.sentence_breaks_utf8),
        std::make_tuple("clause_breaks", &L.clause_breaks, &L.clause_breaks_utf8)})
    for (const auto& b : r.list(root[key], key)) {
      if (b.size() == 1)
        ascii->push_back(b[0]);
      else
        utf8->push_back(b);
    }
  // Breaks are known before any phrase is added: a phrase holding one is an error.

  const YAML::Node sections = root["sections"];
  r.keys(sections, "sections", {"default", "headers"});
  if (sections && sections["default"])
    L.default_section = section_kind(sections["default"].as<std::string>(), r, sections["default"]);
  if (sections && sections["headers"])
    for (const auto& kv : sections["headers"]) {
      const SectionKind k = section_kind(kv.first.as<std::string>(), r, kv.first);
      for (const auto& h : r.list(kv.second, "sections.headers")) {
        L.headers[text::lower(h)] = k;
        // A one-word header is a vocabulary word, so a header with a dropped letter is found.
        if (h.find(' ') == std::string::npos)
          L.vocab.emplace(text::lower(h), static_cast<std::int32_t>(L.vocab.size()));
        L.header_lengths.insert(h.size());
      }
    }

  auto tag = [](Cat c, std::string v = {}, double n = 0) {
    Tag t;
    t.cat = c;
    t.value = std::move(v);
    t.number = n;
    return t;
  };
  r.value_lists(
      root["targets"], "targets", {"polyp", "polypectomy", "generic", "history"},
      [&](const std::string& v, const std::string& p) { L.add_phrase(p, tag(Cat::kTarget, v)); });
  r.value_lists(
      root["segments"], "segments", kSegments,
      [&](const std::string& v, const std::string& p) { L.add_phrase(p, tag(Cat::kSegment, v)); });
  for (const auto& p : r.list(root["generic_sites"], "generic_sites"))
    L.add_phrase(p, tag(Cat::kGeneric));
  r.value_lists(root["morphology"], "morphology", kMorphology,
                [&](const std::string& v, const std::string& p) {
                  L.add_phrase(p, tag(Cat::kMorphology, v));
                });
  r.value_lists(root["paris"], "paris", kParis, [&](const std::string& v, const std::string& p) {
    L.add_phrase(p, tag(Cat::kParis, v));
  });
  if (root["size_units"])
    for (const auto& kv : root["size_units"])
      L.add_phrase(kv.first.as<std::string>(), tag(Cat::kSizeUnit, {}, kv.second.as<double>()));
  r.value_lists(
      root["size_words"], "size_words", kSizeClass,
      [&](const std::string& v, const std::string& p) { L.add_phrase(p, tag(Cat::kSizeWord, v)); });
  r.value_lists(
      root["removal"], "removal", kRemoval,
      [&](const std::string& v, const std::string& p) { L.add_phrase(p, tag(Cat::kRemoval, v)); });
  r.value_lists(root["histology"], "histology", kHistology,
                [&](const std::string& v, const std::string& p) {
                  L.add_phrase(p, tag(Cat::kHistology, v));
                });
  r.value_lists(root["dysplasia"], "dysplasia", kDysplasia,
                [&](const std::string& v, const std::string& p) {
                  L.add_phrase(p, tag(Cat::kDysplasia, v));
                });
  if (root["numbers"])
    for (const auto& kv : root["numbers"])
      L.add_phrase(kv.first.as<std::string>(), tag(Cat::kNumber, {}, kv.second.as<double>()));
  for (const auto& p : r.list(root["multiple"], "multiple")) L.add_phrase(p, tag(Cat::kMultiple));
  for (const auto& p : r.list(root["classifiers"], "classifiers"))
    L.add_phrase(p, tag(Cat::kClassifier));
  const YAML::Node mods = root["modifiers"];
  r.keys(mods, "modifiers", {"negated", "possible", "historical", "family", "hypothetical"});
  const std::pair<const char*, Mod> kMods[] = {{"negated", Mod::kNegated},
                                               {"possible", Mod::kPossible},
                                               {"historical", Mod::kHistorical},
                                               {"family", Mod::kFamily},
                                               {"hypothetical", Mod::kHypothetical}};
  for (const auto& [name, mod] : kMods) {
    if (!mods || !mods[name]) continue;
    const std::string where = std::string("modifiers.") + name;
    r.keys(mods[name], where, {"forward", "backward", "both"});
    const std::pair<const char*, Dir> kDirs[] = {
        {"forward", Dir::kForward}, {"backward", Dir::kBackward}, {"both", Dir::kBoth}};
    for (const auto& [dname, dir] : kDirs)
      for (const auto& p : r.list(mods[name][dname], where + "." + dname)) {
        Tag t;
        t.cat = Cat::kModifier;
        t.dir = dir;
        t.mod = mod;
        L.add_phrase(p, t);
      }
  }
  for (const auto& p : r.list(root["terminate"], "terminate"))
    L.add_phrase(p, tag(Cat::kTerminate));
  for (const auto& p : r.list(root["pseudo"], "pseudo")) L.add_phrase(p, tag(Cat::kPseudo));
  const YAML::Node prep = root["preparation"];
  r.keys(prep, "preparation", {"terms", "quality", "bbps_terms", "bbps_min"});
  if (prep) {
    for (const auto& p : r.list(prep["terms"], "preparation.terms"))
      L.add_phrase(p, tag(Cat::kPrepTerm));
    r.value_lists(prep["quality"], "preparation.quality", kPrep,
                  [&](const std::string& v, const std::string& p) {
                    L.add_phrase(p, tag(Cat::kPrepQuality, v));
                  });
    for (const auto& p : r.list(prep["bbps_terms"], "preparation.bbps_terms"))
      L.add_phrase(p, tag(Cat::kBbps));
    if (prep["bbps_min"])
      for (const auto& kv : prep["bbps_min"]) {
        const std::string v = kv.first.as<std::string>();
        if (std::find(kPrep.begin(), kPrep.end(), v) == kPrep.end())
          r.fail(kv.first, "preparation.bbps_min." + v, "is not a preparation value");
        L.aggregation.bbps_min.emplace_back(kv.second.as<int>(), v);
      }
    std::sort(L.aggregation.bbps_min.rbegin(), L.aggregation.bbps_min.rend());
  }
  const YAML::Node caecum = root["caecum_reached"];
  r.keys(caecum, "caecum_reached", {"reached", "not_reached"});
  if (caecum) {
    for (const auto& p : r.list(caecum["reached"], "caecum_reached.reached"))
      L.add_phrase(p, tag(Cat::kCaecumYes));
    for (const auto& p : r.list(caecum["not_reached"], "caecum_reached.not_reached"))
      L.add_phrase(p, tag(Cat::kCaecumNo));
  }
  for (const auto& p : r.list(root["normal_exam"], "normal_exam"))
    L.add_phrase(p, tag(Cat::kNormalExam));
  for (const auto& [key, cat] :
       {std::make_pair("non_polyp", Cat::kNonPolyp), std::make_pair("incidental", Cat::kIncidental),
        std::make_pair("resolved", Cat::kResolved),
        std::make_pair("history_sentence", Cat::kHistorySentence),
        std::make_pair("current_exam", Cat::kCurrent), std::make_pair("landmark", Cat::kLandmark),
        std::make_pair("whole_colon", Cat::kWholeColon),
        std::make_pair("pathology_inline", Cat::kPathInline),
        std::make_pair("other_organ", Cat::kOtherOrgan),
        std::make_pair("limited_view", Cat::kLimited)})
    for (const auto& p : r.list(root[key], key)) L.add_phrase(p, tag(cat));
  // Directional lists: before (the phrase precedes the number) and after (it follows).
  for (const auto& [key, cat] :
       {std::make_pair("distance", Cat::kDistance), std::make_pair("at_least", Cat::kAtLeast)}) {
    r.keys(root[key], key, {"before", "after"});
    if (!root[key]) continue;
    for (const auto& [dname, dir] :
         {std::make_pair("before", Dir::kForward), std::make_pair("after", Dir::kBackward)})
      for (const auto& p : r.list(root[key][dname], std::string(key) + "." + dname)) {
        Tag t = tag(cat);
        t.dir = dir;
        L.add_phrase(p, t);
      }
  }
  for (const auto& w : r.list(root["anaphora"], "anaphora")) L.anaphora.insert(text::lower(w));
  for (const auto& w : r.list(root["ordinals"], "ordinals")) L.ordinals.insert(text::lower(w));
  for (const auto& w : r.list(root["specimen_words"], "specimen_words"))
    L.specimen_words.insert(text::lower(w));
  for (const auto& w : r.list(root["corrections"], "corrections"))
    L.corrections.push_back(text::lower(w));
  for (const auto& w : r.list(root["abbreviations"], "abbreviations"))
    L.abbreviations.insert(text::lower(w));
  for (const auto& w : r.list(root["count_breakers"], "count_breakers"))
    L.anaphora.insert("|" + text::lower(w));
  if (const YAML::Node f = root["fold"]) {
    if (!f.IsMap()) r.fail(f, "fold", "must map characters to characters");
    for (const auto& kv : f) L.fold[kv.first.as<std::string>()] = kv.second.as<std::string>();
  }
  const YAML::Node agg = root["aggregation"];
  r.keys(agg, "aggregation", {"min_affirmed", "cjk_min", "confidence"});
  if (agg) {
    Aggregation& a = L.aggregation;
    if (agg["min_affirmed"]) a.min_affirmed = agg["min_affirmed"].as<int>();
    if (agg["cjk_min"]) a.cjk_min = agg["cjk_min"].as<int>();
    const YAML::Node c = agg["confidence"];
    r.keys(c, "aggregation.confidence",
           {"positive", "positive_confirmed", "negative", "negative_normal_only", "uncertain",
            "not_mentioned", "conflict_penalty", "field"});
    if (c) {
      const std::pair<const char*, double*> kConf[] = {
          {"positive", &a.conf_positive},
          {"positive_confirmed", &a.conf_positive_confirmed},
          {"negative", &a.conf_negative},
          {"negative_normal_only", &a.conf_negative_normal_only},
          {"uncertain", &a.conf_uncertain},
          {"not_mentioned", &a.conf_not_mentioned},
          {"conflict_penalty", &a.conf_conflict_penalty},
          {"field", &a.conf_field}};
      for (const auto& [k, dst] : kConf)
        if (c[k]) *dst = c[k].as<double>();
    }
  }
  L.finish();
  return lex;
}
}  // namespace

}  // namespace endoked::report
