// SRTP through our libsrtp2 wrapper, checked against an independent reference written here
// with OpenSSL primitives. The reference is itself pinned to the RFCs first:
//   RFC 3711 B.2 (AES-CM keystream), B.3 (key derivation), RFC 7714 §16.1.1 and §17.1.
#include "ringlane/crypto/srtp.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ringlane/common/bytes.hpp"
#include "ringlane/crypto/digest.hpp"
#include "unit/test_util.hpp"

namespace ringlane::crypto {
namespace {
using ringlane::testing::from_hex;
using Vec = std::vector<std::uint8_t>;

// ---- the reference ------------------------------------------------------------------------

Vec aes_ctr(const Vec& key, const Vec& iv16, const Vec& in) {
  Vec out(in.size());
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  EVP_EncryptInit_ex(c, EVP_aes_128_ctr(), nullptr, key.data(), iv16.data());
  int n = 0;
  EVP_EncryptUpdate(c, out.data(), &n, in.data(), static_cast<int>(in.size()));
  EVP_CIPHER_CTX_free(c);
  return out;
}

// RFC 3711 §4.3: AES-CM PRF keyed with the master key, IV = (label-at-byte-7 XOR salt) * 2^16.
Vec kdf(const Vec& master_key, Vec master_salt, std::uint8_t label, std::size_t length) {
  master_salt.resize(14, 0);  // a 12-byte (GCM) salt is padded with zeros, as libsrtp does
  Vec iv(16, 0);
  std::copy(master_salt.begin(), master_salt.end(), iv.begin());
  iv[7] ^= label;
  return aes_ctr(master_key, iv, Vec(length, 0));
}

// RFC 3711 §4.1.1 / §4.2: AES-CM + HMAC-SHA1-80 of a 12-byte-header RTP packet.
Vec ref_protect_cm(const Vec& mk, const Vec& ms, const Vec& pkt, std::uint32_t roc) {
  Vec key = kdf(mk, ms, 0, 16), auth = kdf(mk, ms, 1, 20), salt = kdf(mk, ms, 2, 14);
  Vec iv(16, 0);
  std::copy(salt.begin(), salt.end(), iv.begin());
  for (int i = 0; i < 4; ++i)
    iv[4 + i] ^= pkt[8 + i];  // SSRC
  std::uint64_t index = (std::uint64_t{roc} << 16) | load_be16(pkt.data() + 2);
  for (int i = 0; i < 6; ++i)
    iv[8 + i] ^= static_cast<std::uint8_t>(index >> (40 - 8 * i));
  Vec out(pkt.begin(), pkt.begin() + 12);
  Vec enc = aes_ctr(key, iv, Vec(pkt.begin() + 12, pkt.end()));
  out.insert(out.end(), enc.begin(), enc.end());
  Vec authed = out;
  for (int i = 3; i >= 0; --i)
    authed.push_back(static_cast<std::uint8_t>(roc >> (8 * i)));
  auto tag = hmac_sha1(auth, {authed});
  out.insert(out.end(), tag.begin(), tag.begin() + 10);
  return out;
}

// AES-128-GCM seal/open with a 16-byte tag.
Vec gcm_seal(const Vec& key, const Vec& iv12, const Vec& aad, const Vec& plain) {
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), nullptr, key.data(), iv12.data());
  int n = 0;
  EVP_EncryptUpdate(c, nullptr, &n, aad.data(), static_cast<int>(aad.size()));
  Vec out(plain.size() + 16);
  EVP_EncryptUpdate(c, out.data(), &n, plain.data(), static_cast<int>(plain.size()));
  EVP_EncryptFinal_ex(c, out.data() + n, &n);
  EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out.data() + plain.size());
  EVP_CIPHER_CTX_free(c);
  return out;
}

// RFC 7714 §8.1: IV = (00 00 || SSRC || ROC || SEQ) XOR salt; AAD = the RTP header.
Vec ref_protect_gcm_session(const Vec& key, const Vec& salt, const Vec& pkt, std::uint32_t roc) {
  Vec iv(12, 0);
  for (int i = 0; i < 4; ++i)
    iv[2 + i] = pkt[8 + i];
  for (int i = 0; i < 4; ++i)
    iv[6 + i] = static_cast<std::uint8_t>(roc >> (24 - 8 * i));
  iv[10] = pkt[2];
  iv[11] = pkt[3];
  for (int i = 0; i < 12; ++i)
    iv[i] ^= salt[i];
  Vec out(pkt.begin(), pkt.begin() + 12);
  Vec sealed = gcm_seal(key, iv, out, Vec(pkt.begin() + 12, pkt.end()));
  out.insert(out.end(), sealed.begin(), sealed.end());
  return out;
}

Vec ref_protect_gcm(const Vec& mk, const Vec& ms, const Vec& pkt, std::uint32_t roc) {
  return ref_protect_gcm_session(kdf(mk, ms, 0, 16), kdf(mk, ms, 2, 12), pkt, roc);
}

// RFC 7714 §9.1/§17: SRTCP with AEAD. Output header || ciphertext || tag || E|index.
Vec ref_protect_srtcp_gcm_session(const Vec& key, const Vec& salt, const Vec& pkt,
                                  std::uint32_t index) {
  Vec iv(12, 0);
  for (int i = 0; i < 4; ++i)
    iv[2 + i] = pkt[4 + i];
  for (int i = 0; i < 4; ++i)
    iv[8 + i] = static_cast<std::uint8_t>(index >> (24 - 8 * i));
  for (int i = 0; i < 12; ++i)
    iv[i] ^= salt[i];
  Vec e_index(4);
  store_be32(e_index.data(), 0x80000000u | index);
  Vec aad(pkt.begin(), pkt.begin() + 8);
  aad.insert(aad.end(), e_index.begin(), e_index.end());
  Vec out(pkt.begin(), pkt.begin() + 8);
  Vec sealed = gcm_seal(key, iv, aad, Vec(pkt.begin() + 8, pkt.end()));
  out.insert(out.end(), sealed.begin(), sealed.end());
  out.insert(out.end(), e_index.begin(), e_index.end());
  return out;
}

// ---- the reference against the RFCs ---------------------------------------------------------

const Vec kMasterKey = from_hex("E1F97A0D3E018BE0D64FA32C06DE4139");
const Vec kMasterSalt = from_hex("0EC675AD498AFEEBB6960B3AABE6");

TEST(SrtpReference, Rfc3711B3KeyDerivation) {
  EXPECT_EQ(kdf(kMasterKey, kMasterSalt, 0, 16), from_hex("C61E7A93744F39EE10734AFE3FF7A087"));
  EXPECT_EQ(kdf(kMasterKey, kMasterSalt, 2, 14), from_hex("30CBBC08863D8C85D49DB34A9AE1"));
  EXPECT_EQ(kdf(kMasterKey, kMasterSalt, 1, 20),
            from_hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"));
}

TEST(SrtpReference, Rfc3711B2Keystream) {
  Vec ks = aes_ctr(from_hex("2B7E151628AED2A6ABF7158809CF4F3C"),
                   from_hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"), Vec(48, 0));
  EXPECT_EQ(ks, from_hex("E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB"
                         "41E95B3BB0A2E8DD477901E4FCA894C0"));
}

const Vec kGcmKey = from_hex("000102030405060708090a0b0c0d0e0f");
const Vec kGcmSalt = from_hex("517569642070726f2071756f");  // "Quid pro quo"

TEST(SrtpReference, Rfc7714Section16_1_1) {
  Vec rtp = from_hex(
      "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 20646976"
      "69736120 696e2070 61727465 73207472 6573");
  EXPECT_EQ(
      ref_protect_gcm_session(kGcmKey, kGcmSalt, rtp, 0),
      from_hex("8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5"
               "0d294e6f 42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439 0cce"));
}

TEST(SrtpReference, Rfc7714Section17_1) {
  Vec rtcp = from_hex(
      "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61"
      "deadbeef deadbeef deadbeef deadbeef deadbeef");
  EXPECT_EQ(ref_protect_srtcp_gcm_session(kGcmKey, kGcmSalt, rtcp, 0x5d4),
            from_hex("81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7 6c06f32d"
                     "c676a5f1 730d6fda 4ce09b46 86303ded 0bb9275b c84aa458 96cf4d2f c5abf872"
                     "45d9eade 800005d4"));
}

// ---- the wrapper against the reference ------------------------------------------------------

Vec rtp_packet(std::uint16_t seq, std::size_t payload) {
  Vec p = from_hex("80600000 00001000 cafebabe");
  store_be16(p.data() + 2, seq);
  for (std::size_t i = 0; i < payload; ++i)
    p.push_back(static_cast<std::uint8_t>(i * 7 + seq));
  return p;
}

Vec master_of(SrtpProfile profile) {
  Vec m = kMasterKey;
  m.insert(m.end(), kMasterSalt.begin(),
           kMasterSalt.begin() + static_cast<long>(srtp_salt_length(profile)));
  return m;
}

class SrtpWrapper : public ::testing::TestWithParam<SrtpProfile> {};

TEST_P(SrtpWrapper, ProtectMatchesReferenceAndRoundTrips) {
  SrtpProfile profile = GetParam();
  Vec master = master_of(profile);
  Vec salt(master.begin() + 16, master.end());
  auto tx = SrtpSession::create(profile, master, SrtpDirection::kOutbound);
  auto rx = SrtpSession::create(profile, master, SrtpDirection::kInbound);
  ASSERT_TRUE(tx && rx);
  std::uint16_t seq = 65533;  // crosses the rollover: ROC becomes 1
  std::uint32_t roc = 0;
  for (std::size_t payload : {100, 200, 1200, 100, 200}) {
    Vec plain = rtp_packet(seq, payload);
    Vec buf = plain;
    buf.resize(plain.size() + SrtpSession::kMaxTrailer);
    auto n = tx->protect_rtp(buf, plain.size());
    ASSERT_TRUE(n);
    Vec wire(buf.begin(), buf.begin() + static_cast<long>(*n));
    Vec expected = profile == SrtpProfile::kAeadAes128Gcm
                       ? ref_protect_gcm(kMasterKey, salt, plain, roc)
                       : ref_protect_cm(kMasterKey, salt, plain, roc);
    EXPECT_EQ(wire, expected) << "seq " << seq;
    auto m = rx->unprotect_rtp(buf, *n);
    ASSERT_TRUE(m) << "seq " << seq;
    EXPECT_EQ(Vec(buf.begin(), buf.begin() + static_cast<long>(*m)), plain);
    if (++seq == 0)
      roc = 1;
  }
  EXPECT_EQ(tx->counters().protected_packets, 5u);
  EXPECT_EQ(rx->counters().unprotected_packets, 5u);
}

TEST_P(SrtpWrapper, ReplayTamperAndLengthAreCountedByReason) {
  SrtpProfile profile = GetParam();
  auto tx = SrtpSession::create(profile, master_of(profile), SrtpDirection::kOutbound);
  auto rx = SrtpSession::create(profile, master_of(profile), SrtpDirection::kInbound);
  Vec plain = rtp_packet(10, 160);
  Vec buf = plain;
  buf.resize(plain.size() + SrtpSession::kMaxTrailer);
  std::size_t n = *tx->protect_rtp(buf, plain.size());
  Vec wire(buf.begin(), buf.begin() + static_cast<long>(n));

  Vec copy = wire;
  ASSERT_TRUE(rx->unprotect_rtp(copy, n));
  copy = wire;
  EXPECT_FALSE(rx->unprotect_rtp(copy, n));  // the same packet again
  EXPECT_EQ(rx->counters().replay_failures, 1u);

  Vec tampered = rtp_packet(11, 160);
  tampered.resize(tampered.size() + SrtpSession::kMaxTrailer);
  std::size_t t = *tx->protect_rtp(tampered, 12 + 160);
  tampered[20] ^= 0x01;
  EXPECT_FALSE(rx->unprotect_rtp(tampered, t));
  EXPECT_EQ(rx->counters().auth_failures, 1u);

  Vec tiny(8);
  EXPECT_FALSE(rx->unprotect_rtp(tiny, tiny.size()));
  Vec no_room = rtp_packet(12, 100);  // no tailroom for the tag
  EXPECT_FALSE(tx->protect_rtp(no_room, no_room.size()));
  EXPECT_EQ(rx->counters().bad_length + tx->counters().bad_length, 2u);
  // Out of order within the window is fine; older than the window is a replay failure.
  for (std::uint16_t s = 13; s < 13 + 1100; ++s) {
    Vec p = rtp_packet(s, 20);
    p.resize(p.size() + SrtpSession::kMaxTrailer);
    std::size_t k = *tx->protect_rtp(p, 32);
    if (s == 13) {
      wire.assign(p.begin(), p.begin() + static_cast<long>(k));
      continue;  // held back, delivered late below
    }
    ASSERT_TRUE(rx->unprotect_rtp(p, k));
  }
  EXPECT_FALSE(rx->unprotect_rtp(wire, wire.size()));
  EXPECT_EQ(rx->counters().replay_failures, 2u);
}

TEST_P(SrtpWrapper, SrtcpRoundTripAndTamper) {
  SrtpProfile profile = GetParam();
  Vec master = master_of(profile);
  auto tx = SrtpSession::create(profile, master, SrtpDirection::kOutbound);
  auto rx = SrtpSession::create(profile, master, SrtpDirection::kInbound);
  Vec rr = from_hex("81c90007 cafebabe aabbccdd 40fffffb 00011170 0000000c 11112222 0000028f");
  Vec buf = rr;
  buf.resize(rr.size() + SrtpSession::kMaxTrailer);
  auto n = tx->protect_rtcp(buf, rr.size());
  ASSERT_TRUE(n);
  EXPECT_NE(Vec(buf.begin() + 8, buf.begin() + 32), Vec(rr.begin() + 8, rr.end()));  // encrypted
  if (profile == SrtpProfile::kAeadAes128Gcm) {
    // The trailer carries the index libsrtp used: rebuild the packet with the reference.
    std::uint32_t index = load_be32(buf.data() + *n - 4) & 0x7FFFFFFF;
    Vec salt(master.begin() + 16, master.end());
    EXPECT_EQ(Vec(buf.begin(), buf.begin() + static_cast<long>(*n)),
              ref_protect_srtcp_gcm_session(kdf(kMasterKey, salt, 3, 16),
                                            kdf(kMasterKey, salt, 5, 12), rr, index));
  }
  Vec wire(buf.begin(), buf.begin() + static_cast<long>(*n));
  auto m = rx->unprotect_rtcp(buf, *n);
  ASSERT_TRUE(m);
  EXPECT_EQ(Vec(buf.begin(), buf.begin() + static_cast<long>(*m)), rr);
  // The same index again is a replay; a fresh packet with a flipped bit fails authentication.
  EXPECT_FALSE(rx->unprotect_rtcp(wire, wire.size()));
  EXPECT_EQ(rx->counters().replay_failures, 1u);
  Vec next = rr;
  next.resize(rr.size() + SrtpSession::kMaxTrailer);
  std::size_t k = *tx->protect_rtcp(next, rr.size());
  next[10] ^= 0x80;
  EXPECT_FALSE(rx->unprotect_rtcp(next, k));
  EXPECT_EQ(rx->counters().auth_failures, 1u);
}

INSTANTIATE_TEST_SUITE_P(Profiles, SrtpWrapper,
                         ::testing::Values(SrtpProfile::kAes128CmSha1_80,
                                           SrtpProfile::kAeadAes128Gcm),
                         [](const auto& p) {
                           return p.param == SrtpProfile::kAeadAes128Gcm
                                      ? std::string("AeadAes128Gcm")
                                      : std::string("Aes128CmSha1_80");
                         });

TEST(SrtpKeying, SplitsExporterOutputByRole) {
  // client key | server key | client salt | server salt (RFC 5764 §4.2), CM lengths.
  Vec material;
  for (int i = 0; i < 60; ++i)
    material.push_back(static_cast<std::uint8_t>(i));
  auto client = split_srtp_keying_material(SrtpProfile::kAes128CmSha1_80, material, true);
  ASSERT_TRUE(client);
  Vec client_master(material.begin(), material.begin() + 16);
  client_master.insert(client_master.end(), material.begin() + 32, material.begin() + 46);
  Vec server_master(material.begin() + 16, material.begin() + 32);
  server_master.insert(server_master.end(), material.begin() + 46, material.end());
  EXPECT_EQ(client->local, client_master);
  EXPECT_EQ(client->remote, server_master);
  auto server = split_srtp_keying_material(SrtpProfile::kAes128CmSha1_80, material, false);
  EXPECT_EQ(server->local, server_master);
  EXPECT_FALSE(
      split_srtp_keying_material(SrtpProfile::kAeadAes128Gcm, material, true));  // GCM: 56 bytes
  EXPECT_EQ(srtp_keying_material_length(SrtpProfile::kAeadAes128Gcm), 56u);
  EXPECT_FALSE(SrtpSession::create(SrtpProfile::kAeadAes128Gcm, material, SrtpDirection::kInbound));
}

}  // namespace
}  // namespace ringlane::crypto
