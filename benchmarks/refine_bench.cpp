// The refiners from the TRUE boxes of real frames (Kvasir-SEG layout: images/<id>.jpg,
// masks/<id>.jpg): per refiner and box mode (one union box / one box per 8-connected component of
// the expert mask), mean Dice and IoU as PraNet computes them over every image and over the
// accepted ones, accept / reject counts by reason, ms per image. JSON on stdout.
//   endoked_bench_refine IMAGES_DIR MASKS_DIR [LIMIT] [THREADS]
#include <fmt/format.h>

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>

#include "endoked/core/files.h"
#include "endoked/core/parallel.h"
#include "endoked/data/image_codec.h"
#include "endoked/vision/masks.h"
#include "endoked/vision/refine.h"

namespace fs = std::filesystem;
using namespace endoked;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: endoked_bench_refine IMAGES_DIR MASKS_DIR [LIMIT] [THREADS]\n";
    return 2;
  }
  const std::string images_dir = argv[1], masks_dir = argv[2];
  const std::size_t limit = argc > 3 ? std::stoul(argv[3]) : 0;
  const int threads = argc > 4 ? std::stoi(argv[4]) : 2;
  std::vector<std::string> ids;
  for (const auto& f : fs::directory_iterator(images_dir))
    ids.push_back(f.path().filename().string());
  std::sort(ids.begin(), ids.end());
  if (limit > 0 && ids.size() > limit) ids.resize(limit);
  const vision::RefinerOptions options;
  const vision::MaskRules rules;
  nlohmann::json out = {{"images", ids.size()}, {"refiners", nlohmann::json::object()}};
  for (const std::string name : {"box", "ellipse", "grabcut"}) {
    const auto refiner = vision::make_refiner(name, options);
    for (const std::string mode : {"union", "components"}) {
      std::mutex m;
      double dice = 0, iou = 0, dice_acc = 0, iou_acc = 0, ms = 0;
      std::int64_t accepted = 0;
      std::map<std::string, std::int64_t> rejects;
      parallel_for(static_cast<std::int64_t>(ids.size()), threads, [&](std::int64_t i) {
        const std::string& id = ids[static_cast<std::size_t>(i)];
        const cv::Mat image = data::decode_rgb(files::read_all(images_dir + "/" + id), 0, 0);
        const cv::Mat truth_grey = data::decode_gray(files::read_all(masks_dir + "/" + id));
        const cv::Mat truth = vision::binarise_truth(truth_grey);
        std::vector<vision::Box> boxes;
        if (mode == "union") {
          boxes.push_back(vision::mask_box(truth));
        } else {
          for (const auto& c : vision::components(truth))
            if (c.area >= 0.001 * truth.total()) boxes.push_back(c.box);  // not specks
        }
        const auto t0 = std::chrono::steady_clock::now();
        const vision::Refined r = refiner->refine(image, boxes, cv::Mat());
        const double took =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
        const auto s = vision::segmentation_score(r.mask, truth_grey);
        const std::string reason = vision::judge_mask(r, rules);
        std::lock_guard<std::mutex> lock(m);
        dice += s.dice;
        iou += s.iou;
        ms += took;
        if (reason.empty()) {
          ++accepted;
          dice_acc += s.dice;
          iou_acc += s.iou;
        } else {
          ++rejects[reason];
        }
      });
      const double n = static_cast<double>(ids.size());
      out["refiners"][name][mode] = {{"dice", dice / n},
                                     {"iou", iou / n},
                                     {"accepted", accepted},
                                     {"dice_accepted", accepted > 0 ? dice_acc / accepted : 0.0},
                                     {"iou_accepted", accepted > 0 ? iou_acc / accepted : 0.0},
                                     {"rejects", rejects},
                                     {"ms_per_image", ms / n}};
      std::cerr << fmt::format("{:8} {:10} Dice {:.3f} IoU {:.3f} accepted {} ({:.3f}) {:.1f} ms\n",
                               name, mode, dice / n, iou / n, accepted,
                               accepted > 0 ? dice_acc / accepted : 0.0, ms / n);
    }
  }
  std::cout << out.dump(2) << "\n";
  return 0;
}
