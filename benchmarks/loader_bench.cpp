// Loader throughput against the decode limit.
//   endoked_bench_loader bare   --store DIR --threads T [--seconds S]
//       libjpeg-turbo full-size decode of the store's images (bytes preloaded) in T threads
//   endoked_bench_loader loader --store DIR --threads T [--dct 0|1] [--fast 0|1] [--seconds S]
//       the endoked loader: resize 224x224, hflip, normalise, batches of 32; --dct: DCT-domain
//       scaled decode; --fast: fast IDCT/chroma upsampling (the image is downscaled anyway)
// Prints one JSON object: {"mode", "threads", "images", "seconds", "images_per_s", …}.
#include <malloc.h>
#include <sys/resource.h>
#include <turbojpeg.h>

#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "endoked/core/error.h"
#include "endoked/data/loader.h"
#include "endoked/data/store.h"

using namespace endoked;
using clock_type = std::chrono::steady_clock;

namespace {

double since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

// CPU seconds used by the whole process (all threads, user + system): images per CPU-second
// is the per-core rate, and does not count time the machine gave to other tenants.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

nlohmann::json bare(const std::string& store_dir, int threads, double seconds) {
  data::RecordStore store(store_dir);
  std::vector<std::string> bytes;
  for (std::int64_t i = 0; i < store.image_count(); ++i) bytes.push_back(store.image(i).bytes);
  std::atomic<std::int64_t> done{0};
  std::atomic<bool> stop{false};
  auto worker = [&](int t) {
    tjhandle h = tjInitDecompress();
    std::vector<unsigned char> out;
    for (std::size_t i = static_cast<std::size_t>(t); !stop;
         i = (i + static_cast<std::size_t>(threads)) % bytes.size()) {
      int w, hh, ss, cs;
      const auto* p = reinterpret_cast<const unsigned char*>(bytes[i].data());
      tjDecompressHeader3(h, p, bytes[i].size(), &w, &hh, &ss, &cs);
      out.resize(static_cast<std::size_t>(w) * hh * 3);
      ENDOKED_CHECK(tjDecompress2(h, p, bytes[i].size(), out.data(), w, 0, hh, TJPF_RGB, 0) == 0,
                    "decode failed");
      ++done;
    }
    tjDestroy(h);
  };
  const auto t0 = clock_type::now();
  const double c0 = cpu_seconds();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker, t);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : pool) th.join();
  const double s = since(t0), cpu = cpu_seconds() - c0;
  return {{"mode", "bare_decode_full"},
          {"threads", threads},
          {"images", done.load()},
          {"seconds", s},
          {"images_per_s", done.load() / s},
          {"cpu_seconds", cpu},
          {"images_per_cpu_s", done.load() / cpu}};
}

nlohmann::json loader(const std::string& store_dir, int threads, bool dct, bool fast,
                      double seconds) {
  data::cap_library_threads(1);
  data::DatasetOptions d;
  d.store = store_dir;
  auto dataset = data::make_dataset(d);
  data::LoaderOptions o;
  o.batch_size = 32;
  o.threads = threads;
  o.prefetch = 4;
  o.dct_scaling = dct;
  o.fast_decode = fast;
  data::TransformSpec resize, flip, norm;
  resize.name = "resize";
  resize.size = {224, 224};
  flip.name = "hflip";
  norm.name = "normalise";
  o.transforms = {resize, flip, norm};
  // One warm-up epoch (page cache, allocator), then timed epochs until `seconds` have passed.
  data::Batch b;
  {
    data::Loader warm(dataset, o, 0);
    for (int k = 0; k < 4 && warm.next(b); ++k) {
    }
  }
  std::int64_t images = 0;
  const auto t0 = clock_type::now();
  const double c0 = cpu_seconds();
  for (std::int64_t epoch = 1; since(t0) < seconds; ++epoch) {
    data::Loader l(dataset, o, epoch);
    while (l.next(b)) {
      images += b.images.size(0);
      if (since(t0) >= seconds) break;
    }
  }
  const double s = since(t0), cpu = cpu_seconds() - c0;
  const std::string mode =
      std::string(dct ? "endoked_loader_dct_scaled" : "endoked_loader_full_decode") +
      (fast ? "_fast" : "");
  return {{"mode", mode}, {"threads", threads},         {"images", images},
          {"seconds", s}, {"images_per_s", images / s}, {"cpu_seconds", cpu},
          {"images_per_cpu_s", images / cpu}, {"output", "32x3x224x224 float"}};
}

}  // namespace

int main(int argc, char** argv) {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  CLI::App app{"endoked loader benchmark"};
  std::string mode, store;
  int threads = 1, dct = 1, fast = 0;
  double seconds = 8;
  app.add_option("mode", mode, "bare | loader")->required();
  app.add_option("--store", store, "record store")->required();
  app.add_option("--threads", threads, "decode threads");
  app.add_option("--dct", dct, "loader: DCT-domain scaled decode (1) or full size (0)");
  app.add_option("--fast", fast,
                 "loader: fast IDCT/upsampling with DCT scaling (1) or accurate (0)");
  app.add_option("--seconds", seconds, "measuring time");
  CLI11_PARSE(app, argc, argv);
  try {
    const nlohmann::json r = mode == "bare" ? bare(store, threads, seconds)
                                            : loader(store, threads, dct != 0, fast != 0, seconds);
    std::printf("%s\n", r.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
