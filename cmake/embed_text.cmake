# Writes OUTPUT: a C++ function NAME() returning {file name, file text} for each of FILES, so
# data files (lexicons) ship inside the program. Run with cmake -P; rewrites only on change.
string(REPLACE "|" ";" FILES "${FILES}")  # passed '|'-separated through the command line
set(body "#include <string>\n#include <utility>\n#include <vector>\n\nnamespace endoked::report {\n")
string(APPEND body "const std::vector<std::pair<std::string, std::string>>& ${NAME}() {\n")
string(APPEND body "  static const std::vector<std::pair<std::string, std::string>> files = {\n")
foreach(f IN LISTS FILES)
  file(READ ${f} text)
  get_filename_component(base ${f} NAME)
  string(APPEND body "      {\"${base}\", R\"endoked_embed(${text})endoked_embed\"},\n")
endforeach()
string(APPEND body "  };\n  return files;\n}\n}  // namespace endoked::report\n")
if(EXISTS ${OUTPUT})
  file(READ ${OUTPUT} old)
  if(old STREQUAL body)
    return()
  endif()
endif()
file(WRITE ${OUTPUT} "${body}")
