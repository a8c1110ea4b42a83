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

LoaderOptions square_loader_options(int size, int threads, std::uint64_t seed, bool augment) {
  LoaderOptions lo;
  lo.threads = threads;
  lo.seed = seed;
  lo.on_error = "skip";
  TransformSpec resize;
  resize.name = "resize";
  resize.size = {size, size};
  lo.transforms.push_back(resize);
  if (augment)
    for (const char* flip : {"hflip", "vflip"}) {
      TransformSpec f;
      f.name = flip;
      lo.transforms.push_back(f);
    }
  TransformSpec norm;
  norm.name = "normalise";
  lo.transforms.push_back(norm);
  return lo;
}

namespace {

// One decoded, transformed image. For single-image datasets the pixels go straight into the
// step's batch tensor (`in_batch`); for bags each image keeps its own [3, H, W] tensor.
struct Prepared {
  at::Tensor chw;   // [3, H, W] float (bags only)
  at::Tensor mask;  // [1, H, W] uint8 (bags only)
  bool in_batch = false;
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
  at::Tensor images;  // single-image datasets: [items, 3, H, W], allocated by the first sample
  at::Tensor masks;   // [items, 1, H, W] uint8 when samples have masks
};

// HWC → CHW float, fused with x·scale + shift per channel (the final normalise, or 1/255 when
// there is none): OpenCV's split, then a vectorised convert straight into the batch tensor's
// planes (about 2.5× faster than a per-pixel lookup table at 224²). A mirrored sample (the
// pipeline's final hflip) is flipped first, so both cases compute exactly the same values.
struct ChwWriter {
  cv::Vec3f scale, shift;
  ChwWriter(const cv::Vec3f& sc, const cv::Vec3f& sh) : scale(sc), shift(sh) {}
  void write(const cv::Mat& image, float* dst, bool mirror) const {
    ENDOKED_CHECK(image.type() == CV_8UC3 || image.type() == CV_32FC3,
                  "loader: images must be 8-bit or float RGB");
    const int h = image.rows, w = image.cols;
    const std::size_t plane = static_cast<std::size_t>(h) * w;
    thread_local cv::Mat flipped;
    thread_local std::vector<cv::Mat> planes;
    if (mirror) cv::flip(image, flipped, 1);
    cv::split(mirror ? flipped : image, planes);
    for (int c = 0; c < 3; ++c) {
      cv::Mat out(h, w, CV_32F, dst + static_cast<std::size_t>(c) * plane);
      planes[static_cast<std::size_t>(c)].convertTo(out, CV_32F, scale[c], shift[c]);
    }
  }
};

void write_mask(const cv::Mat& mask, std::uint8_t* dst, bool mirror) {
  for (int y = 0; y < mask.rows; ++y) {
    const auto* m = mask.ptr<std::uint8_t>(y);
    if (mirror)
      for (int x = mask.cols - 1; x >= 0; --x) *dst++ = m[x] > 127 ? 1 : 0;
    else
      for (int x = 0; x < mask.cols; ++x) *dst++ = m[x] > 127 ? 1 : 0;
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
  bool single;
  std::unique_ptr<ChwWriter> chw;  // with the final normalise fused in
  double final_hflip_p = -1;       // the final hflip's probability, done by the CHW copy

  std::mutex mutex;
  std::condition_variable work_ready, step_done;
  std::deque<std::pair<std::int64_t, std::size_t>> queue;  // (step, item slot)
  std::map<std::int64_t, Step> steps;                      // in flight
  std::int64_t next_to_enqueue = 0;
  std::int64_t next_to_return = 0;
  std::int64_t skipped_total = 0;
  bool stopping = false;
  // Batch tensors are reused once the caller has let go of them: fresh 20 MB buffers would be
  // page-faulted in for every batch (≈ 10 % of the time of a 224×224 pipeline).
  std::vector<at::Tensor> pool;
  std::vector<std::thread> workers;

  Impl(std::shared_ptr<const Dataset> d, const LoaderOptions& o, std::int64_t epoch, int rank,
       int world, std::int64_t cursor)
      : dataset(std::move(d)),
        options(o),
        pipeline(o.transforms),
        plan(dataset->size(), o.seed, epoch, o.batch_size, rank, world, parse_tail(o.tail), cursor),
        augment_seed(derive_seed(o.seed, "augment", static_cast<std::uint64_t>(epoch))),
        skip_corrupt(o.on_error == "skip"),
        single(dataset->single_image()) {
    cv::Vec3f mean, std, scale(1.0f / 255, 1.0f / 255, 1.0f / 255), shift(0, 0, 0);
    // A final normalise and a final horizontal flip commute with each other and are done by
    // the CHW copy (one pass over the pixels instead of three).
    bool normalise = pipeline.pop_normalise(mean, std);
    final_hflip_p = pipeline.pop_final_hflip();
    if (!normalise && final_hflip_p >= 0) normalise = pipeline.pop_normalise(mean, std);
    if (normalise) {
      for (int k = 0; k < 3; ++k) {
        scale[k] = 1.0f / (255.0f * std[k]);
        shift[k] = -mean[k] / std[k];
      }
    }
    chw = std::make_unique<ChwWriter>(scale, shift);
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
        out = prepare(index, job.first, job.second);
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

  // Destination of a single-image sample in its step's batch tensor (allocated by the first
  // sample to arrive, which fixes H and W for the batch).
  std::pair<float*, std::uint8_t*> batch_slot(std::int64_t step, std::size_t slot,
                                              const Sample& s) {
    std::lock_guard<std::mutex> lock(mutex);
    Step& st = steps.at(step);
    const std::int64_t h = s.image.rows, w = s.image.cols;
    if (!st.images.defined()) {
      const auto n = static_cast<std::int64_t>(st.items.size());
      st.images = pooled({n, 3, h, w}, at::kFloat);
      if (!s.mask.empty()) st.masks = pooled({n, 1, h, w}, at::kByte);
    }
    ENDOKED_CHECK(st.images.size(2) == h && st.images.size(3) == w,
                  "loader: images of different sizes in one batch (", w, "x", h, " vs ",
                  st.images.size(3), "x", st.images.size(2), ", image '", s.id,
                  "'): add a resize or random_resized_crop transform");
    ENDOKED_CHECK(st.masks.defined() == !s.mask.empty(), "loader: image '", s.id,
                  "' has a mask while others in its batch do not (or the reverse)");
    const auto i = static_cast<std::int64_t>(slot);
    return {st.images.data_ptr<float>() + i * 3 * h * w,
            st.masks.defined() ? st.masks.data_ptr<std::uint8_t>() + i * h * w : nullptr};
  }

  // Caller holds the lock. A pooled tensor is free when the pool holds its only reference.
  at::Tensor pooled(at::IntArrayRef shape, at::ScalarType type) {
    for (auto& t : pool)
      if (t.use_count() == 1 && t.scalar_type() == type && t.sizes() == shape) return t;
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(type));
    if (pool.size() < static_cast<std::size_t>(2 * options.prefetch + 4)) pool.push_back(t);
    return t;
  }

  std::vector<Prepared> prepare(std::int64_t index, std::int64_t step, std::size_t slot) {
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
        // Every image of this thread decodes into the same, cache-warm buffer; the sample is
        // finished (copied into its batch) before this thread decodes the next one.
        thread_local std::vector<std::uint8_t> decoded;
        s.image = decode_rgb_into(r.bytes, need.width, need.height,
                                  DecodeOptions{options.dct_scaling, options.fast_decode}, &scale,
                                  decoded);
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
      // The final hflip's draw, made where the flip would have made it; the copy mirrors.
      const bool mirror = final_hflip_p >= 0 && rng.bernoulli(final_hflip_p);
      if (mirror) flip_boxes(s.boxes, s.image.size(), true);
      if (single) {
        const auto [dst, mdst] = batch_slot(step, slot, s);
        chw->write(s.image, dst, mirror);
        if (mdst) write_mask(s.mask, mdst, mirror);
        p.in_batch = true;
      } else {
        p.chw = at::empty({3, s.image.rows, s.image.cols}, at::TensorOptions().dtype(at::kFloat));
        chw->write(s.image, p.chw.data_ptr<float>(), mirror);
        if (!s.mask.empty()) {
          p.mask = at::empty({1, s.mask.rows, s.mask.cols}, at::TensorOptions().dtype(at::kByte));
          write_mask(s.mask, p.mask.data_ptr<std::uint8_t>(), mirror);
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
    std::vector<const Prepared*> kept;
    std::vector<std::int64_t> kept_rows;  // single-image: rows of step.images that hold a sample
    std::map<std::string, std::vector<float>> labels;
    for (std::size_t i = 0; i < step.items.size(); ++i) {
      for (auto& p : step.prepared[i]) {
        if (p.skipped) {
          ++b.skipped;
          continue;
        }
        kept.push_back(&p);
        kept_rows.push_back(static_cast<std::int64_t>(i));
        b.boxes.push_back(std::move(p.boxes));
        b.ids.push_back(p.id);
      }
      b.offsets.push_back(static_cast<std::int64_t>(b.ids.size()));
      b.indices.push_back(step.items[i]);
      for (const auto& [k, v] : step.labels[i]) labels[k].push_back(static_cast<float>(v));
    }
    const auto f32 = at::TensorOptions().dtype(at::kFloat);
    if (single) {
      if (!step.images.defined()) {
        b.images = at::empty({0, 3, 0, 0}, f32);
      } else if (kept.size() == step.items.size()) {
        b.images = step.images;
        b.masks = step.masks;
      } else {  // drop the rows of skipped samples
        const at::Tensor rows = at::tensor(kept_rows, at::TensorOptions().dtype(at::kLong));
        b.images = step.images.index_select(0, rows);
        if (step.masks.defined()) b.masks = step.masks.index_select(0, rows);
      }
    } else if (kept.empty()) {
      b.images = at::empty({0, 3, 0, 0}, f32);
    } else {
      std::vector<at::Tensor> images, masks;
      for (const Prepared* p : kept) {
        ENDOKED_CHECK(p->chw.sizes() == kept[0]->chw.sizes(),
                      "loader: images of different sizes in one batch (image '", p->id,
                      "'): add a resize or random_resized_crop transform");
        ENDOKED_CHECK(p->mask.defined() == kept[0]->mask.defined(), "loader: image '", p->id,
                      "' has a mask while others in its batch do not (or the reverse)");
        images.push_back(p->chw);
        if (p->mask.defined()) masks.push_back(p->mask);
      }
      b.images = at::stack(images);
      if (!masks.empty()) b.masks = at::stack(masks);
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
