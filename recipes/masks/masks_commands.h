#pragma once
// `endoked masks export`, `endoked masks eval` and `endoked masks import` (tools, one process).
//
// A set of masks is a masks sidecar (endoked refine; its accepted rows) or a folder of mask
// images (PNG, JPEG, BMP, TIFF; any depth read as 8-bit grey); a truth set may also be a truth
// sidecar with images/mask (the synthetic truth). Images are matched by case name: a sidecar
// row's record-store source path, a folder file's path below the folder, without the extension,
// '/' turned into '_' ("EX0000001/003.jpg" → "EX0000001_003"). A sidecar finds its record store
// in its manifest's provenance (input_store) unless `store` is given.
#include <nlohmann/json.hpp>

#include <string>

namespace endoked::recipes {

struct MasksExportOptions {
  std::string masks;   // masks sidecar
  std::string store;   // default: the sidecar's input store
  std::string coco;    // COCO instances JSON to write
  std::string png;     // folder: masks/<case>.png 0/1 and previews/<case>.png 0/255
  std::string nnunet;  // folder: nnU-Net raw dataset (imagesTr, labelsTr, dataset.json)
  bool all = false;    // also the rejected masks (default: accepted only)
};

/// Writes the exports; returns a summary. Output folders must be new or empty; every file is
/// written atomically.
nlohmann::json masks_export(const MasksExportOptions& o);

struct MasksEvalOptions {
  std::string masks;  // masks sidecar or folder of predictions
  std::string truth;  // truth sidecar or folder of masks
  std::string store;  // record store for sidecars (default: the masks sidecar's input store)
  std::string json;   // optional: write the result here
};

/// Per image as PraNet scores it (vision::segmentation_score) over the predictions that have a
/// truth: mean Dice, mean IoU, mean box IoU (bounding boxes of the two masks), and detection
/// precision / recall (components' boxes matched at IoU ≥ 0.5, pooled over images) and AP50
/// (each predicted component's box scored by the mean of the normalised map over it, a
/// sidecar's binary masks by their row's quality; vision::average_precision).
nlohmann::json masks_eval(const MasksEvalOptions& o);

struct MasksImportOptions {
  std::string folder;  // mask images named like the store's images (case names)
  std::string store;   // the record store the masks belong to
  std::string output;  // the masks sidecar to create (never replaces anything)
};

/// A masks sidecar from a folder of mask images (expert masks, another tool's output), the layout
/// endoked refine writes, so distill, masks export and masks eval take it: each store image whose
/// case name has a mask file gets it (binarised with the truth rule, 0/255 PNG) as `accepted`
/// with quality 1, refiner "import" and its components' boxes; an all-zero mask is `empty`; a
/// mask that does not decode or is not its image's size is `failed` (counted, named); images
/// without a file are `no_box`. Files that match no image are counted and the first named.
nlohmann::json masks_import(const MasksImportOptions& o);

}  // namespace endoked::recipes
