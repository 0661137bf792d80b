#include "cli/bundle_files.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include "cli/bundle_archive.hpp"

namespace nb::cli {
namespace {

WgKey key(uint8_t fill) {
    WgKey k;
    k.bytes.fill(fill);
    return k;
}

WgDevice device() {
    WgDevice dev;
    dev.private_key = key(1);
    dev.listen_port = 51820;
    WgPeer p;
    p.public_key = key(2);
    p.preshared_key = key(3);
    p.allowed_ips = {*IpPrefix::parse("10.0.0.2/32")};
    p.endpoint = SockAddr::parse_numeric("192.0.2.1:51820");
    dev.peers.push_back(p);
    return dev;
}

TEST(BundleFiles, WireguardDumpHidesPrivateAndPresharedKeys) {
    const std::string dump = wireguard_dump(device());
    EXPECT_EQ(dump.find(key(1).base64()), std::string::npos);
    EXPECT_EQ(dump.find(key(3).base64()), std::string::npos);
    EXPECT_NE(dump.find(key(2).base64()), std::string::npos);  // public keys stay
    EXPECT_NE(dump.find("192.0.2.1:51820"), std::string::npos);
    EXPECT_NE(dump.find("(hidden)"), std::string::npos);
}

TEST(BundleFiles, ScrubRemovesSecretsInBase64AndHexOnly) {
    const auto secrets = secrets_of(device());
    EXPECT_EQ(secrets.size(), 4u);
    std::string text = "private_key=" + key(1).hex() + "\n\"psk\":\"" + key(3).base64() +
                       "\" public " + key(2).base64() + " upper " + key(1).hex();
    for (size_t i = text.rfind(' ') + 1; i < text.size(); ++i)
        text[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(text[i])));
    EXPECT_EQ(scrub_secrets(text, secrets), 3u);
    EXPECT_EQ(text.find(key(1).hex()), std::string::npos);
    EXPECT_EQ(text.find(key(3).base64()), std::string::npos);
    EXPECT_NE(text.find(key(2).base64()), std::string::npos);
    EXPECT_NE(text.find("private_key=(removed)"), std::string::npos);
}

TEST(BundleFiles, ScrubLeavesLongerRunsAlone) {
    // A secret inside a longer token is not a key of its own (and cannot be one on a
    // key boundary); nothing is cut out of the middle of other data.
    const auto secrets = secrets_of(device());
    std::string text = "x" + key(1).hex() + "ff";
    const std::string before = text;
    EXPECT_EQ(scrub_secrets(text, secrets), 0u);
    EXPECT_EQ(text, before);
}

std::map<std::string, std::string> read_tar_gz(const std::string& path) {
    std::map<std::string, std::string> out;
    archive* a = archive_read_new();
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    EXPECT_EQ(archive_read_open_filename(a, path.c_str(), 4096), ARCHIVE_OK);
    archive_entry* e = nullptr;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        std::string data(static_cast<size_t>(archive_entry_size(e)), '\0');
        archive_read_data(a, data.data(), data.size());
        out[archive_entry_pathname(e)] = data;
    }
    archive_read_free(a);
    return out;
}

TEST(BundleArchive, PacksEveryFileUnderTheFolderRootOnly) {
    char dir[] = "/tmp/nb_bundle_XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    const std::string path = std::string(dir) + "/b.tar.gz";
    write_tar_gz(path, "bundle", {{"a.txt", "alpha\n"}, {"empty", ""}, {"b.json", "{}"}});
    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    auto files = read_tar_gz(path);
    EXPECT_EQ(files.size(), 3u);
    EXPECT_EQ(files["bundle/a.txt"], "alpha\n");
    EXPECT_EQ(files["bundle/empty"], "");
    EXPECT_EQ(files["bundle/b.json"], "{}");
    // Never over an existing file.
    EXPECT_THROW(write_tar_gz(path, "bundle", {}), std::runtime_error);
    unlink(path.c_str());
    rmdir(dir);
}

}  // namespace
}  // namespace nb::cli
