#pragma once
// The lexicons shipped with the program (pkg/report/lexicon/*.yaml, embedded at build time)
// and the rules labeller built from them or from files the user names.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "endoked/report/rules.h"

namespace endoked::report {

/// {file name, text} of every embedded lexicon.
const std::vector<std::pair<std::string, std::string>>& embedded_lexicons();

/// The embedded lexicons, each replaced by a user file of the same `language` when `files`
/// names one (a file for a new language adds it).
std::vector<std::shared_ptr<const report::Lexicon>> load_lexicons(
    const std::vector<std::string>& files = {});

}  // namespace endoked::report
