#include "recipes/label/lexicons.h"

#include <yaml-cpp/yaml.h>

#include "endoked/core/error.h"
#include "endoked/core/files.h"

namespace endoked::recipes {

std::vector<std::shared_ptr<const report::Lexicon>> load_lexicons(
    const std::vector<std::string>& files) {
  std::vector<std::pair<std::string, std::string>> sources;  // origin, text
  for (const auto& [name, text] : embedded_lexicons())
    sources.emplace_back("recipes/label/lexicon/" + name + " (embedded)", text);
  for (const auto& f : files) {
    const std::string text = files::read_all(f);
    std::string language;
    try {
      language = YAML::Load(text)["language"].as<std::string>();
    } catch (const YAML::Exception& e) {
      ENDOKED_FAIL("lexicon ", f, ": no readable 'language' key (", e.what(), ")");
    }
    bool replaced = false;
    for (auto& s : sources)
      if (YAML::Load(s.second)["language"].as<std::string>() == language) {
        s = {f, text};
        replaced = true;
      }
    if (!replaced) sources.emplace_back(f, text);
  }
  std::vector<std::shared_ptr<const report::Lexicon>> out;
  for (const auto& [origin, text] : sources) out.push_back(report::load_lexicon(text, origin));
  return out;
}

}  // namespace endoked::recipes
