#pragma once
// Image bytes as received: format sniffing, header dimensions, decode checks, encoding.
// JPEG goes through libjpeg-turbo (DCT-domain scaled decode where it suffices); other formats
// through OpenCV. All functions are thread-safe (TurboJPEG handles are per thread).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace endoked::data {

enum class ImageFormat { kUnknown, kJpeg, kPng, kBmp, kTiff, kWebp };

/// From the signature bytes, never the file name.
ImageFormat sniff_format(std::string_view bytes);
const char* format_name(ImageFormat format);

struct ImageInfo {
  ImageFormat format = ImageFormat::kUnknown;
  int width = 0;
  int height = 0;
};

/// Reads the header only. Throws Error with the reason ("not an image", "bad JPEG header", …).
ImageInfo read_image_info(std::string_view bytes);

/// Decodes the whole compressed stream (JPEG at the smallest DCT scale, which still reads every
/// entropy-coded byte; warnings such as a premature end are errors). Throws Error with the reason.
ImageInfo check_decodes(std::string_view bytes);

/// RGB, 8 bits, row-major [H, W, 3] → JPEG bytes.
std::string encode_jpeg_rgb(const std::uint8_t* rgb, int width, int height, int quality);

}  // namespace endoked::data

namespace cv {
class Mat;
}

namespace endoked::data {

struct DecodeOptions {
  /// Use libjpeg-turbo's DCT-domain downscaling (1/2, 1/4, 1/8, …) when the result stays at
  /// least `min_width` × `min_height`. Off: always decode at full size.
  bool dct_scaling = true;
  /// When the decoded image is larger than min_width × min_height (it will be reduced later):
  /// libjpeg-turbo's fast integer IDCT and plain chroma upsampling (TJFLAG_FASTDCT |
  /// TJFLAG_FASTUPSAMPLE). Differences are a few grey levels, lost in the later downscale.
  /// Decodes used at full resolution (no size given) stay accurate.
  bool fast = false;
};

/// Decodes to 8-bit RGB, [H, W, 3] row-major in a cv::Mat (CV_8UC3). For JPEG, picks the
/// smallest DCT scaling factor whose output is still ≥ min_width × min_height (0 = full size).
/// Other formats go through OpenCV at full size. Throws Error with the reason on bad data.
/// Returns the scale of the decoded image relative to the original (1, 0.5, 0.25, …) in `scale`.
cv::Mat decode_rgb(std::string_view bytes, int min_width, int min_height,
                   const DecodeOptions& options = {}, double* scale = nullptr);
/// The same into `buffer` (grown, never shrunk), returning a cv::Mat header over it: a loader
/// thread decodes every image into the same, cache-warm memory. Valid until the next call with
/// the same buffer.
cv::Mat decode_rgb_into(std::string_view bytes, int min_width, int min_height,
                        const DecodeOptions& options, double* scale,
                        std::vector<std::uint8_t>& buffer);
/// Decodes an 8-bit single-channel image (masks): PNG, JPEG, … through OpenCV.
cv::Mat decode_gray(std::string_view bytes);

}  // namespace endoked::data
