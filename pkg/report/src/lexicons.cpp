#include "endoked/report/lexicons.h"

#include <algorithm>

#include "endoked/core/files.h"

namespace endoked::report {

std::vector<std::shared_ptr<const report::Lexicon>> load_lexicons(
    const std::vector<std::string>& files) {
  std::vector<std::shared_ptr<const report::Lexicon>> out;
  for (const auto& [name, text] : embedded_lexicons())
    out.push_back(report::load_lexicon(text, "pkg/report/lexicon/" + name + " (embedded)"));
  for (const auto& f : files) {
    auto user = report::load_lexicon(files::read_all(f), f);
    const std::string& language = report::lexicon_language(*user);
    auto same = std::find_if(out.begin(), out.end(), [&](const auto& l) {
      return report::lexicon_language(*l) == language;
    });
    if (same != out.end())
      *same = std::move(user);
    else
      out.push_back(std::move(user));
  }
  return out;
}

}  // namespace endoked::report
