// Checks on scores sidecars for the MIL tests (tests/recipes/mil_test.sh).
//   scores_check compare A B TOL   — same images; max |score_A − score_B| ≤ TOL (prints the max
//                                    and mean difference, and both selections' counts)
//   scores_check summary DIR KEY MIN — the store's manifest summary has KEY ≥ MIN
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "endoked/data/sidecars.h"
#include "endoked/data/store.h"

namespace {
using namespace endoked;

struct Rows {
  std::vector<std::string> exams;
  std::vector<data::ScoreRow> images;
};

Rows read(const std::string& dir) {
  Rows r;
  const data::Manifest m = data::Manifest::load(dir);
  for (const auto& s : m.shards) {
    data::ShardReader shard(dir + "/" + s.file);
    for (const auto& e : data::read_rows<data::ExamIndexRow>(shard, "exams"))
      r.exams.push_back(e.id);
    for (const auto& i : data::read_rows<data::ScoreRow>(shard, "images")) r.images.push_back(i);
  }
  return r;
}

int compare(const std::string& a, const std::string& b, double tol) {
  const Rows x = read(a), y = read(b);
  if (x.exams != y.exams || x.images.size() != y.images.size() || x.images.empty()) {
    std::printf("the stores hold different exams or images (%zu vs %zu images)\n", x.images.size(),
                y.images.size());
    return 1;
  }
  double max = 0, sum = 0;
  int sel_x = 0, sel_y = 0, sel_same = 0;
  for (std::size_t i = 0; i < x.images.size(); ++i) {
    const double d = std::abs(x.images[i].score - y.images[i].score);
    max = std::max(max, d);
    sum += d;
    sel_x += x.images[i].selected == 1;
    sel_y += y.images[i].selected == 1;
    sel_same += x.images[i].selected == y.images[i].selected;
  }
  std::printf(
      "scores: max |a - b| = %.3g, mean %.3g over %zu images (tolerance %.3g); "
      "selected positives %d vs %d, same selection for %d\n",
      max, sum / static_cast<double>(x.images.size()), x.images.size(), tol, sel_x, sel_y,
      sel_same);
  return max <= tol ? 0 : 1;
}

int summary(const std::string& dir, const std::string& key, double min) {
  const data::Manifest m = data::Manifest::load(dir);
  if (!m.summary.contains(key) || !m.summary[key].is_number()) {
    std::printf("%s: summary has no number '%s': %s\n", dir.c_str(), key.c_str(),
                m.summary.dump().c_str());
    return 1;
  }
  const double v = m.summary[key].get<double>();
  std::printf("%s: %s = %.4f (minimum %.4f)\n", dir.c_str(), key.c_str(), v, min);
  return v >= min ? 0 : 1;
}
}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "compare" && argc == 5) return compare(argv[2], argv[3], std::atof(argv[4]));
    if (mode == "summary" && argc == 5) return summary(argv[2], argv[3], std::atof(argv[4]));
  } catch (const std::exception& e) {
    std::printf("scores_check: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "usage: see the file comment\n");
  return 2;
}
