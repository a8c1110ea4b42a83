#include "endoked/data/loader.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <thread>

#include "endoked/core/error.h"
#include "endoked/core/log.h"
#include "endoked/data/image_codec.h"

namespace endoked::data {

void cap_library_threads(int torch_threads) {
  cv::setNumThreads(0);
  at::set_num_threads(std::max(1, torch_threads));
}

namespace {

// One decoded, transformed image, laid out CHW float for the batch.
struct Prepared {
  std::vector<float> chw;
  std::vector<std::uint8_t> mask;  // HW, 0/1
  int width = 0, height = 0;
  std::vector<Box> boxes;
  std::string id;
  bool skipped = false;
};

struct Step {
  std::vector<std::int64_t> items;
  std::vector<std::vector<Prepared>> prepared;  // per item, per image
  std::vector<std::map<std::string, double>> labels;
  std::size_t remaining = 0;
  std::exception_ptr error;
};

void to_chw(const cv::Mat& image, std::vector<float>& out) {
  const int h = image.rows, w = image.cols;
  out.resize(static_cast<std::size_t>(3) * h * w);
  float* c0 = out.data();
  float* c1 = c0 + static_cast<std::size_t>(h) * w;
  float* c2 = c1 + static_cast<std::size_t>(h) * w;
  if (image.type() == CV_32FC3) {
    for (int y = 0; y < h; ++y) {
      const auto* p = image.ptr<cv::Vec3f>(y);
      for (int x = 0; x < w; ++x, ++c0, ++c1, ++c2) {
        *c0 = p[x][0];
        *c1 = p[x][1];
        *c2 = p[x][2];
      }
    }
  } else {
    ENDOKED_CHECK(image.type() == CV_8UC3, "loader: images must be 8-bit or float RGB");
    constexpr float k = 1.0f / 255.0f;
    for (int y = 0; y < h; ++y) {
      const auto* p = image.ptr<cv::Vec3b>(y);
      for (int x = 0; x < w; ++x, ++c0, ++c1, ++c2) {
        *c0 = p[x][0] * k;
        *c1 = p[x][1] * k;
        *c2 = p[x][2] * k;
      }
    }
  }
}

}  // namespace

struct Loader::Impl {
  std::shared_ptr<const Dataset> dataset;
  LoaderOptions options;
  Pipeline pipeline;
  EpochPlan plan;
  std::uint64_t augment_seed;
  bool skip_corrupt;

  std::mutex mutex;
  std::condition_variable work_ready, step_done;
  std::deque<std::pair<std::int64_t, std::size_t>> queue;  // (step, item slot)
  std::map<std::int64_t, Step> steps;                      // in flight
  std::int64_t next_to_enqueue = 0;
  std::int64_t next_to_return = 0;
  std::int64_t skipped_total = 0;
  bool stopping = false;
  std::vector<std::thread> workers;

  Impl(std::shared_ptr<const Dataset> d, const LoaderOptions& o, std::int64_t epoch, int rank,
       int world, std::int64_t cursor)
      : dataset(std::move(d)),
        options(o),
        pipeline(o.transforms),
        plan(dataset->size(), o.seed, epoch, o.batch_size, rank, world, parse_tail(o.tail), cursor),
        augment_seed(derive_seed(o.seed, "augment", static_cast<std::uint64_t>(epoch))),
        skip_corrupt(o.on_error == "skip") {
    ENDOKED_CHECK(o.on_error == "skip" || o.on_error == "fail",
                  "loader.on_error must be skip or fail, got '", o.on_error, "'");
    ENDOKED_CHECK(o.threads >= 1 && o.prefetch >= 1,
                  "loader.threads and loader.prefetch must be ≥ 1");
    cv::setNumThreads(0);
    for (int t = 0; t < o.threads; ++t) workers.emplace_back([this] { work(); });
  }

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
    }
    work_ready.notify_all();
    for (auto& t : workers) t.join();
  }

  // Caller holds the lock.
  void enqueue_ahead() {
    while (next_to_enqueue < plan.steps() && next_to_enqueue < next_to_return + options.prefetch) {
      Step& s = steps[next_to_enqueue];
      s.items = plan.batch(next_to_enqueue);
      s.prepared.resize(s.items.size());
      s.labels.resize(s.items.size());
      s.remaining = s.items.size();
      for (std::size_t i = 0; i < s.items.size(); ++i) queue.emplace_back(next_to_enqueue, i);
      ++next_to_enqueue;
    }
    work_ready.notify_all();
  }

  void work() {
    while (true) {
      std::pair<std::int64_t, std::size_t> job;
      {
        std::unique_lock<std::mutex> lock(mutex);
        work_ready.wait(lock, [&] { return stopping || !queue.empty(); });
        if (stopping) return;
        job = queue.front();
        queue.pop_front();
      }
      std::int64_t index;
      {
        std::lock_guard<std::mutex> lock(mutex);
        index = steps.at(job.first).items[job.second];
      }
      std::vector<Prepared> out;
      std::map<std::string, double> labels;
      std::exception_ptr error;
      try {
        labels = dataset->labels(index);
        out = prepare(index);
      } catch (...) {
        error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mutex);
        Step& s = steps.at(job.first);
        s.prepared[job.second] = std::move(out);
        s.labels[job.second] = std::move(labels);
        if (error && !s.error) s.error = error;
        if (--s.remaining == 0) step_done.notify_all();
      }
    }
  }

  std::vector<Prepared> prepare(std::int64_t index) {
    std::vector<RawImage> raw;
    try {
      raw = dataset->read(index);
    } catch (const Error& e) {
      ENDOKED_FAIL("loader: reading item '", dataset->item_id(index), "' (index ", index,
                   "): ", e.reason());
    }
    Rng item_rng = Rng(augment_seed, "sample", static_cast<std::uint64_t>(index));
    std::vector<Prepared> out(raw.size());
    for (std::size_t k = 0; k < raw.size(); ++k) {
      RawImage& r = raw[k];
      Prepared& p = out[k];
      p.id = r.id;
      Sample s;
      s.index = index;
      s.id = r.id;
      s.boxes = std::move(r.boxes);
      s.labels = std::move(r.labels);
      try {
        const cv::Size need = pipeline.decode_size(r.width, r.height);
        double scale = 1.0;
        s.image = decode_rgb(r.bytes, need.width, need.height, DecodeOptions{options.dct_scaling},
                             &scale);
        if (scale != 1.0)
          for (Box& b : s.boxes)
            b = {static_cast<float>(b.x0 * scale), static_cast<float>(b.y0 * scale),
                 static_cast<float>(b.x1 * scale), static_cast<float>(b.y1 * scale), b.label};
        if (!r.mask_bytes.empty()) {
          s.mask = decode_gray(r.mask_bytes);
          if (s.mask.size() != s.image.size()) {
            cv::Mat resized;
            cv::resize(s.mask, resized, s.image.size(), 0, 0, cv::INTER_NEAREST);
            s.mask = resized;
          }
        }
      } catch (const Error& e) {
        if (!skip_corrupt)
          ENDOKED_FAIL("loader: corrupt image '", r.id, "' (image ", r.image_index,
                       "): ", e.reason());
        log::warn("loader: skipping corrupt image '{}' (image {}): {}", r.id, r.image_index,
                  e.reason());
        p.skipped = true;
        continue;
      }
      Rng rng = item_rng.fork("image", k);
      pipeline.apply(s, rng);
      p.width = s.image.cols;
      p.height = s.image.rows;
      to_chw(s.image, p.chw);
      if (!s.mask.empty()) {
        p.mask.resize(static_cast<std::size_t>(p.width) * p.height);
        for (int y = 0; y < p.height; ++y) {
          const auto* m = s.mask.ptr<std::uint8_t>(y);
          for (int x = 0; x < p.width; ++x)
            p.mask[static_cast<std::size_t>(y) * p.width + x] = m[x] > 127 ? 1 : 0;
        }
      }
      p.boxes = std::move(s.boxes);
    }
    return out;
  }

  bool next(Batch& batch) {
    Step step;
    {
      std::unique_lock<std::mutex> lock(mutex);
      if (next_to_return >= plan.steps()) return false;
      enqueue_ahead();
      step_done.wait(lock, [&] { return steps.at(next_to_return).remaining == 0; });
      step = std::move(steps.at(next_to_return));
      steps.erase(next_to_return);
      ++next_to_return;
      enqueue_ahead();
    }
    if (step.error) std::rethrow_exception(step.error);
    assemble(step, batch);
    skipped_total += batch.skipped;
    return true;
  }

  void assemble(Step& step, Batch& b) {
    b = Batch{};
    b.offsets.push_back(0);
    int h = -1, w = -1;
    bool masks = false;
    std::int64_t n = 0;
    for (const auto& item : step.prepared)
      for (const auto& p : item) {
        if (p.skipped) {
          ++b.skipped;
          continue;
        }
        if (h < 0) {
          h = p.height;
          w = p.width;
          masks = !p.mask.empty();
        }
        ENDOKED_CHECK(p.height == h && p.width == w,
                      "loader: images of different sizes in one batch (", p.width, "x", p.height,
                      " vs ", w, "x", h, ", image '", p.id,
                      "'): add a resize or random_resized_crop transform");
        ++n;
      }
    const auto f32 = at::TensorOptions().dtype(at::kFloat);
    b.images = at::empty({n, 3, std::max(h, 0), std::max(w, 0)}, f32);
    if (masks) b.masks = at::empty({n, 1, h, w}, at::TensorOptions().dtype(at::kByte));
    float* dst = b.images.data_ptr<float>();
    std::uint8_t* mdst = masks ? b.masks.data_ptr<std::uint8_t>() : nullptr;
    std::map<std::string, std::vector<float>> labels;
    for (std::size_t i = 0; i < step.items.size(); ++i) {
      for (auto& p : step.prepared[i]) {
        if (p.skipped) continue;
        std::memcpy(dst, p.chw.data(), p.chw.size() * sizeof(float));
        dst += p.chw.size();
        if (mdst) {
          ENDOKED_CHECK(!p.mask.empty(), "loader: image '", p.id, "' has no mask while others do");
          std::memcpy(mdst, p.mask.data(), p.mask.size());
          mdst += p.mask.size();
        }
        b.boxes.push_back(std::move(p.boxes));
        b.ids.push_back(p.id);
      }
      b.offsets.push_back(static_cast<std::int64_t>(b.ids.size()));
      b.indices.push_back(step.items[i]);
      for (const auto& [k, v] : step.labels[i]) labels[k].push_back(static_cast<float>(v));
    }
    for (auto& [k, v] : labels)
      b.labels[k] = at::from_blob(v.data(), {static_cast<std::int64_t>(v.size())}, f32).clone();
  }
};

Loader::Loader(std::shared_ptr<const Dataset> dataset, const LoaderOptions& options,
               std::int64_t epoch, int rank, int world, std::int64_t cursor)
    : impl_(std::make_unique<Impl>(std::move(dataset), options, epoch, rank, world, cursor)) {}
Loader::~Loader() = default;
bool Loader::next(Batch& batch) {
  return impl_->next(batch);
}
std::int64_t Loader::cursor() const {
  return impl_->plan.cursor_after(impl_->next_to_return);
}
std::int64_t Loader::steps() const {
  return impl_->plan.steps();
}
std::int64_t Loader::skipped() const {
  return impl_->skipped_total;
}

}  // namespace endoked::data
