#pragma once
// The MIL stage's parts that are not the training loop: the corpus it reads (exams, bag labels,
// image truth), the item sets the loader deals out, scoring every image with every head
// (collective), precise batch norm, evaluation, the output rows and the sidecar writer.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "endoked/core/error.h"
#include "endoked/core/run_dir.h"
#include "endoked/core/seed.h"
#include "endoked/data/dataset.h"
#include "endoked/data/loader.h"
#include "endoked/data/sidecars.h"
#include "endoked/data/store.h"
#include "endoked/distributed/communicator.h"
#include "mil_model.h"
#include "mil_stage.h"

namespace endoked::recipes::mil {

using nlohmann::json;

inline constexpr float kUnscored = std::numeric_limits<float>::quiet_NaN();

// What the stage knows of the store: exams, their bag labels and the images' truth.
struct Corpus {
  std::vector<data::RecordStore::ExamSpan> spans;
  std::vector<int> label;                 // per exam: 1, 0, or −1 (not a training bag)
  std::vector<int> truth;                 // per image: 0/1, −1 unknown; empty without truth
  std::vector<std::int64_t> shard_exams;  // exams per record shard (the output's layout)
  std::int64_t images = 0;
  std::int64_t exams() const { return static_cast<std::int64_t>(spans.size()); }
};

// Items made of images of the record store: bags (an exam's images, maybe a subset) or chunks
// (images of several exams). Remembers which image each source path is, so a batch's rows map
// back to global image indices even when the loader skipped a corrupt image.
class ImageItems final : public data::Dataset {
 public:
  ImageItems(std::shared_ptr<const data::Dataset> images,
             std::vector<std::vector<std::int64_t>> items, std::vector<std::string> names)
      : images_(std::move(images)), items_(std::move(items)), names_(std::move(names)) {}
  std::int64_t size() const override { return static_cast<std::int64_t>(items_.size()); }
  std::vector<data::RawImage> read(std::int64_t index) const override {
    std::vector<data::RawImage> out;
    for (const std::int64_t g : items_.at(static_cast<std::size_t>(index))) {
      auto one = images_->read(g);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        image_of_[one.at(0).id] = g;
      }
      out.push_back(std::move(one[0]));
    }
    return out;
  }
  std::map<std::string, double> labels(std::int64_t) const override { return {}; }
  std::string item_id(std::int64_t index) const override {
    return names_.at(static_cast<std::size_t>(index));
  }
  const std::vector<std::int64_t>& item(std::int64_t index) const {
    return items_.at(static_cast<std::size_t>(index));
  }
  /// Global image index of a batch row's id.
  std::int64_t image_of(const std::string& id) const {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = image_of_.find(id);
    ENDOKED_CHECK(it != image_of_.end(), "mil: image '", id, "' was not read by this item set");
    return it->second;
  }

 private:
  std::shared_ptr<const data::Dataset> images_;
  std::vector<std::vector<std::int64_t>> items_;
  std::vector<std::string> names_;
  mutable std::mutex mutex_;
  mutable std::unordered_map<std::string, std::int64_t> image_of_;
};

// Every head's output for a set of images, per global image index / per exam.
struct Scores {
  std::vector<float> attention, weight, dsmil, student;  // per image; NaN: not scored
  std::vector<float> attention_bag, dsmil_bag;           // per exam (logits); NaN: not scored

  void resize(std::int64_t images, std::int64_t exams) {
    for (auto* v : {&attention, &weight, &dsmil, &student})
      v->assign(static_cast<std::size_t>(images), kUnscored);
    for (auto* v : {&attention_bag, &dsmil_bag})
      v->assign(static_cast<std::size_t>(exams), kUnscored);
  }
  std::string bytes() const {
    std::string out = "EKMILSC1";
    for (const auto* v : {&attention, &weight, &dsmil, &student, &attention_bag, &dsmil_bag}) {
      const std::uint64_t n = v->size();
      out.append(reinterpret_cast<const char*>(&n), sizeof n);
      out.append(reinterpret_cast<const char*>(v->data()), n * sizeof(float));
    }
    return out;
  }
  static Scores parse(const std::string& b, const std::string& where, std::int64_t images,
                      std::int64_t exams) {
    Scores s;
    ENDOKED_CHECK(b.size() >= 8 && b.compare(0, 8, "EKMILSC1") == 0, where,
                  ": not a mil scores file");
    std::size_t at = 8;
    for (auto* v :
         {&s.attention, &s.weight, &s.dsmil, &s.student, &s.attention_bag, &s.dsmil_bag}) {
      std::uint64_t n = 0;
      ENDOKED_CHECK(at + sizeof n <= b.size(), where, ": truncated");
      std::memcpy(&n, b.data() + at, sizeof n);
      at += sizeof n;
      ENDOKED_CHECK(n <= (b.size() - at) / sizeof(float), where, ": truncated");
      v->resize(n);
      std::memcpy(v->data(), b.data() + at, n * sizeof(float));
      at += n * sizeof(float);
    }
    ENDOKED_CHECK(static_cast<std::int64_t>(s.student.size()) == images &&
                      static_cast<std::int64_t>(s.attention_bag.size()) == exams,
                  where, ": written for another store (", s.student.size(), " images, ",
                  s.attention_bag.size(), " exams; this one has ", images, ", ", exams, ")");
    return s;
  }
};

// Min and max of a teacher's scores over `images` (scored ones).
struct Range {
  double lo = 0, hi = 0;
  double apply(double x) const {
    if (!(hi > lo)) return 0.0;
    return std::clamp((x - lo) / (hi - lo), 0.0, 1.0);
  }
  json to_json() const { return {lo, hi}; }
};

// The output rows and the localisation selection.
struct Outputs {
  std::vector<data::ScoreRow> rows;  // per global image
  std::int64_t positives = 0, negatives = 0;
  json selection = json::object();
};

// Fisher–Yates with the stage's seeded generator (the same order on every rank).
template <class T>
void shuffle(std::vector<T>& v, Rng& rng) {
  for (std::size_t i = v.size(); i > 1; --i)
    std::swap(v[i - 1],
              v[static_cast<std::size_t>(rng.randint(0, static_cast<std::int64_t>(i) - 1))]);
}

int policy_label(const std::string& policy, const char* key);

// "images/has_polyp" → "has_polyp".
std::string truth_column_name(const std::string& column);

Corpus load_corpus(const std::string& store, const std::string& labels, int uncertain,
                   int not_mentioned, const std::string& truth, const std::string& truth_column);

// A pass over `view` with no augmentation, one item per step, items dealt over the ranks.
std::unique_ptr<data::Loader> inference_loader(std::shared_ptr<const data::Dataset> view, int size,
                                               int threads, const dist::Communicator& comm);

double sigmoid(double x);

// Collective: every head's scores for `exams` (all their images, no augmentation, eval mode).
Scores score_exams(dist::Communicator& comm, MilNetImpl& net,
                   const std::shared_ptr<const data::Dataset>& images, const Corpus& c,
                   const std::vector<std::int64_t>& exams, int size, int threads,
                   const std::string& label);

// Collective. "Precise batch norm": the encoder's running statistics recomputed as the average of
// batch statistics over chunks of `chunk` training images (no augmentation), so eval-mode
// scores do not depend on the last few steps' momentum averages. Ranks share the chunks; the
// average weighs each rank by its chunks, so it does not depend on the world size.
void precise_batch_norm(dist::Communicator& comm, MilNetImpl& net,
                        const std::shared_ptr<const data::Dataset>& images,
                        std::vector<std::int64_t> pool, std::int64_t count, int chunk, int size,
                        int threads, std::uint64_t seed, std::int64_t epoch);

Range range_of(const std::vector<float>& v, const std::vector<std::int64_t>& images);

// Images of `exams`, in order.
std::vector<std::int64_t> images_of(const Corpus& c, const std::vector<std::int64_t>& exams);

// Exam AUC (student max-pooled, each teacher's bag probability) against the exams' labels, and
// image AUC / AP against the truth, over `exams`.
json evaluate(const Corpus& c, const Scores& s, const std::vector<std::int64_t>& exams);

Outputs make_rows(const Corpus& c, const Scores& s, const Range& attention, const Range& dsmil,
                  const MilSelect* select);

// Collective: writes the scores sidecar (the record store's shard layout) on rank 0, with
// `extra` files (name → bytes) beside the shards.
void write_output(dist::Communicator& comm, const std::string& dir, const Corpus& c,
                  const Outputs& out, const json& provenance, const json& summary,
                  const std::map<std::string, std::string>& extra, const RunDir& run,
                  const std::string& stage);

std::vector<std::int64_t> all_exams_with_images(const Corpus& c);

std::string scores_file(const std::string& checkpoint_dir, std::int64_t epoch);

std::string fmt_metrics(const json& e);

}  // namespace endoked::recipes::mil
