#include "cli/bundle_archive.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <memory>
#include <stdexcept>

#include "base/errno_text.hpp"

namespace nb::cli {

namespace {

struct ArchiveFree {
    void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryFree {
    void operator()(archive_entry* e) const { archive_entry_free(e); }
};

}  // namespace

void write_tar_gz(const std::string& path, const std::string& folder,
                  const std::vector<BundleFile>& files) {
    // Created here with O_EXCL, so the keys and addresses inside are never readable by
    // others, not even for a moment, and nothing already there is overwritten.
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error(path + ": " + errno_text(errno));
    std::unique_ptr<archive, ArchiveFree> a(archive_write_new());
    auto fail = [&](const std::string& what) {
        std::string msg = path + ": " + what + ": " +
                          (archive_error_string(a.get()) ? archive_error_string(a.get()) : "?");
        a.reset();
        ::close(fd);
        ::unlink(path.c_str());
        throw std::runtime_error(msg);
    };
    if (archive_write_add_filter_gzip(a.get()) != ARCHIVE_OK ||
        archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK)
        fail("setting up the archive");
    if (archive_write_open_fd(a.get(), fd) != ARCHIVE_OK) fail("opening");
    const time_t now = std::time(nullptr);
    for (const BundleFile& f : files) {
        std::unique_ptr<archive_entry, EntryFree> e(archive_entry_new());
        archive_entry_set_pathname(e.get(), (folder + "/" + f.name).c_str());
        archive_entry_set_size(e.get(), static_cast<la_int64_t>(f.data.size()));
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_perm(e.get(), 0600);
        archive_entry_set_mtime(e.get(), now, 0);
        if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK) fail("adding " + f.name);
        if (!f.data.empty() && archive_write_data(a.get(), f.data.data(), f.data.size()) !=
                                   static_cast<la_ssize_t>(f.data.size()))
            fail("writing " + f.name);
    }
    if (archive_write_close(a.get()) != ARCHIVE_OK) fail("finishing");
    a.reset();
    if (::close(fd) != 0) {
        const int err = errno;
        ::unlink(path.c_str());
        throw std::runtime_error(path + ": " + errno_text(err));
    }
}

}  // namespace nb::cli
