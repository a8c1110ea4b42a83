// `endoked weights import|info` (tools).
#include <cstdlib>
#include <string>

#include "endoked/core/error.h"

#include "endoked/engine/stage.h"
#include "weights_commands.h"

namespace endoked::recipes {

void register_weights(engine::Registry& registry) {
  registry.add_tool(
      {"weights import",
       "read a torch.save file (torchvision .pth, checkpoint) into a backbone and save it",
       {{"file", "the torch.save file (a state dict, or a dict with model / state_dict)", true},
        {"--arch", "resnet18 | resnet34 | resnet50", true},
        {"--out", "the imported weights to write (a torch.save file of the state dict)", true},
        {"--num-classes", "classifier head size; default: the file's fc; 0: backbone only"}},
       [](const std::map<std::string, std::string>& a) {
         std::int64_t classes = -1;
         if (const auto n = a.find("--num-classes"); n != a.end()) {
           char* end = nullptr;
           classes = std::strtoll(n->second.c_str(), &end, 10);
           ENDOKED_CHECK(!n->second.empty() && *end == '\0' && classes >= 0,
                         "--num-classes must be an integer ≥ 0, got '", n->second, "'");
         }
         return weights_import(a.at("file"), a.at("--arch"), a.at("--out"), classes);
       }});
  registry.add_tool({"weights info",
                     "list the tensors of a torch.save file",
                     {{"file", "the torch.save file", true}},
                     [](const std::map<std::string, std::string>& a) { return weights_info(a.at("file")); }});
}

}  // namespace endoked::recipes
