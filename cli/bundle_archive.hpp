// A debug bundle on disk: files packed into one tar.gz (libarchive), under one folder
// named like the archive, readable by root only.
#pragma once

#include <string>
#include <vector>

namespace nb::cli {

struct BundleFile {
    std::string name;  // inside the bundle's folder
    std::string data;
};

// Writes `path` (mode 0600, replacing nothing: an existing file is an error) with every
// file under `folder/`. Throws std::runtime_error naming the path and the problem.
void write_tar_gz(const std::string& path, const std::string& folder,
                  const std::vector<BundleFile>& files);

}  // namespace nb::cli
