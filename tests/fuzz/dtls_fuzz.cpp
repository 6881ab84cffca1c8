// DTLS input: arbitrary records fed to live endpoints, one fresh server and one in the middle
// of a handshake, must be refused or absorbed without a crash or a leak.
// Input: [1 byte selector][datagram bytes], split on every 0xFF 0xFF 0xFF marker.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "ringlane/crypto/dtls.hpp"

namespace {
using namespace ringlane::crypto;

std::shared_ptr<const DtlsCertificate> cert() {
  static auto c = DtlsCertificate::generate();
  return c;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1)
    return 0;
  DtlsEndpoint server(cert(), DtlsRole::kServer, cert()->fingerprint());
  DtlsEndpoint client(cert(), DtlsRole::kClient, cert()->fingerprint());
  client.start();
  std::vector<std::uint8_t> hello;
  client.pop(hello);
  if ((data[0] & 1) != 0) {
    server.on_datagram(hello);  // the server is now mid-handshake
  }
  std::size_t start = 1;
  for (std::size_t i = 1; i <= size; ++i) {
    bool end = i == size ||
               (i + 2 < size && data[i] == 0xFF && data[i + 1] == 0xFF && data[i + 2] == 0xFF);
    if (!end)
      continue;
    std::span<const std::uint8_t> d(data + start, i - start);
    server.on_datagram(d);
    client.on_datagram(d);
    start = i + 3;
    i += 2;
  }
  std::vector<std::uint8_t> out;
  while (server.pop(out)) {
  }
  (void)server.srtp_keying_material();
  return 0;
}
