// `endoked masks export|eval|import` (tools).
#include <fmt/format.h>

#include <iostream>

#include "endoked/engine/stage.h"
#include "masks_commands.h"

namespace endoked::recipes {
namespace {
std::string arg(const std::map<std::string, std::string>& a, const char* name) {
  const auto it = a.find(name);
  return it == a.end() ? "" : it->second;
}
}  // namespace

void register_masks(engine::Registry& registry) {
  registry.add_tool(
      {"masks export",
       "a masks sidecar -> COCO instances JSON (RLE), PNG masks, an nnU-Net raw dataset",
       {{"masks", "the masks sidecar (endoked refine)", true},
        {"--coco", "COCO instances JSON to write (RLE segmentations, pycocotools' counts)"},
        {"--png", "new folder: masks/<case>.png 0/1 and previews/<case>.png 0/255"},
        {"--nnunet", "new folder: imagesTr/<case>_0000.png, labelsTr/<case>.png, dataset.json"},
        {"--store", "the record store (default: the sidecar's input store)"},
        {"--all", "also the rejected masks (default: accepted only)", false, true}},
       [](const std::map<std::string, std::string>& a) {
         MasksExportOptions o;
         o.masks = a.at("masks");
         o.coco = arg(a, "--coco");
         o.png = arg(a, "--png");
         o.nnunet = arg(a, "--nnunet");
         o.store = arg(a, "--store");
         o.all = a.count("--all") > 0;
         const auto r = masks_export(o);
         std::cout << fmt::format("masks export: {} mask(s) of {}", r["masks"].get<std::int64_t>(),
                                  o.masks);
         for (const auto& [flag, dir] :
              {std::pair{"coco", o.coco}, {"png", o.png}, {"nnunet", o.nnunet}})
           if (!dir.empty()) std::cout << fmt::format(" -> {} {}", flag, dir);
         if (r["skipped"].get<std::int64_t>() > 0)
           std::cout << fmt::format("; {} unusable mask(s) skipped (named above)",
                                    r["skipped"].get<std::int64_t>());
         std::cout << "\n";
         return 0;
       }});
  registry.add_tool(
      {"masks eval",
       "Dice / IoU as PraNet computes them, box IoU, detection precision / recall at IoU 0.5",
       {{"--masks", "masks sidecar or folder of prediction images", true},
        {"--truth", "truth sidecar (images/mask) or folder of mask images", true},
        {"--store", "record store for sidecars (default: the masks sidecar's input store)"},
        {"--json", "also write the result as JSON here"}},
       [](const std::map<std::string, std::string>& a) {
         MasksEvalOptions o;
         o.masks = a.at("--masks");
         o.truth = a.at("--truth");
         o.store = arg(a, "--store");
         o.json = arg(a, "--json");
         const auto r = masks_eval(o);
         std::cout << fmt::format(
             "masks eval: {} image(s): Dice {:.4f}, IoU {:.4f}, weighted F {:.4f}, S-measure "
             "{:.4f}, mean E-measure {:.4f}, MAE {:.4f}, box IoU {:.4f}, precision {:.3f}, "
             "recall {:.3f} (IoU ≥ 0.5); {} prediction(s) without truth, {} truth(s) without "
             "prediction, {} undecodable case(s) skipped\n",
             r["images"].get<std::int64_t>(), r["dice"].get<double>(), r["iou"].get<double>(),
             r["weighted_f"].get<double>(), r["s_measure"].get<double>(),
             r["mean_e_measure"].get<double>(), r["mae"].get<double>(), r["box_iou"].get<double>(),
             r["precision"].get<double>(), r["recall"].get<double>(),
             r["predictions_without_truth"].get<std::int64_t>(),
             r["truths_without_prediction"].get<std::int64_t>(), r["skipped"].get<std::int64_t>());
         return 0;
       }});
  registry.add_tool(
      {"masks import",
       "a folder of mask images (expert masks) -> a masks sidecar of a record store",
       {{"folder", "mask images named like the store's images (EX1/003.png or EX1_003.png)", true},
        {"--store", "the record store the masks belong to", true},
        {"--output", "the masks sidecar to create (never replaces anything)", true}},
       [](const std::map<std::string, std::string>& a) {
         MasksImportOptions o;
         o.folder = a.at("folder");
         o.store = a.at("--store");
         o.output = a.at("--output");
         const auto r = masks_import(o);
         std::cout << fmt::format(
             "masks import: {} -> {}: {}; {} file(s) match no image of the store\n", o.folder,
             o.output, r["counts"].dump(), r["unmatched_files"].get<std::int64_t>());
         return 0;
       }});
}

}  // namespace endoked::recipes
