// The AV1 Dependency Descriptor parser (AV1 RTP payload format, Appendix A): a structure written
// out bit by bit as the syntax tables list it, then the packets that refer to it; custom DTIs,
// frame diffs and chains; the active decode targets; and every kind of bad input refused with
// its reason, the track's state untouched.
#include "ringlane/dataplane/rtp/dependency_descriptor.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "unit/rtp/dependency_descriptor_builder.hpp"

namespace ringlane::rtp {
namespace {

namespace dd = ringlane::testing::dd;

std::vector<std::uint8_t> from_bits(const std::string& text) {
  dd::Bits b;
  for (char c : text) {
    if (c == '0' || c == '1') {
      b.put(c == '1' ? 1 : 0, 1);
    }
  }
  return b.bytes();
}

// L1T3 with its render resolution, written field by field.
const char* kL1t3Bits =
    "1 0 000000 0000000100000010"            // start, not end, template 0, frame 0x0102
    "1 0 0 0 0"                              // structure attached; no bitmask, no custom fields
    "000000 00010"                           // template id offset 0, DtCnt 3
    "00 01 01 00 11"                         // layers: T0 T0 | T1 | T2 T2, end
    "101010 101010 000110 000001 000001"     // DTIs SSS SSS -DS --D --D
    "0 1_0011_0 1_0001_0 1_0000_0 1_0000_0"  // fdiffs {} {4} {2} {1} {1}
    "01"                                     // chain_cnt ns(4) = 1; ns(1) is 0 bits
    "0000 0100 0010 0001 0011"               // chain diffs 0 4 2 1 3
    "1 0000001001111111 0000000101100111";   // 640 x 360

TEST(DependencyDescriptor, ReadsAStructureBitByBit) {
  auto bytes = from_bits(kL1t3Bits);
  dd::StructureSpec spec = dd::l1t3();
  spec.resolutions = {{640, 360}};
  EXPECT_EQ(bytes, dd::descriptor(dd::frame(true, false, 0, 0x0102, &spec)));
  DependencyState state;
  DependencyDescriptor d;
  ASSERT_EQ(parse_dependency_descriptor(bytes, state, d), DependencyError::kNone);
  EXPECT_TRUE(d.start_of_frame);
  EXPECT_FALSE(d.end_of_frame);
  EXPECT_EQ(d.frame_number, 0x0102);
  EXPECT_TRUE(d.has_structure);
  EXPECT_FALSE(d.has_active_decode_targets);
  ASSERT_TRUE(state.known);
  const DependencyStructure& s = state.structure;
  EXPECT_EQ(s.decode_targets, 3);
  ASSERT_EQ(s.template_count, 5);
  EXPECT_EQ(s.max_spatial, 0);
  EXPECT_EQ(s.max_temporal, 2);
  EXPECT_EQ(s.chains, 1);
  const std::uint8_t temporal[] = {0, 0, 1, 2, 2};
  const std::uint8_t fdiff[] = {0, 4, 2, 1, 1};
  const std::uint8_t chain[] = {0, 4, 2, 1, 3};
  for (std::size_t i = 0; i < 5; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(s.templates[i].spatial, 0);
    EXPECT_EQ(s.templates[i].temporal, temporal[i]);
    EXPECT_EQ(s.templates[i].fdiff_count, fdiff[i] == 0 ? 0 : 1);
    EXPECT_EQ(s.templates[i].fdiffs[0], fdiff[i]);
    EXPECT_EQ(s.templates[i].chain_fdiffs[0], chain[i]);
  }
  EXPECT_EQ(s.templates[2].dtis[0], Dti::kNotPresent);
  EXPECT_EQ(s.templates[2].dtis[1], Dti::kDiscardable);
  EXPECT_EQ(s.templates[2].dtis[2], Dti::kSwitch);
  EXPECT_EQ(s.templates[0].dtis[1], Dti::kSwitch);
  // decode_target_layers(): decode target i holds temporal layers 0-i.
  for (std::uint8_t dt = 0; dt < 3; ++dt) {
    EXPECT_EQ(s.target_spatial[dt], 0);
    EXPECT_EQ(s.target_temporal[dt], dt);
    EXPECT_EQ(s.decode_target(0, dt), dt);
  }
  EXPECT_EQ(s.decode_target(1, 0), -1);
  ASSERT_TRUE(s.has_resolutions);
  EXPECT_EQ(s.width[0], 640);
  EXPECT_EQ(s.height[0], 360);
  EXPECT_EQ(state.active_decode_targets, 0x7u);
  // The frame itself: template 0.
  EXPECT_EQ(d.temporal, 0);
  EXPECT_EQ(d.fdiff_count, 0);
  EXPECT_EQ(d.dtis[2], Dti::kSwitch);

  // A packet with the mandatory fields only: its template (3, a TL2 frame) in that structure.
  auto plain = from_bits("0 1 000011 0000000100000011");
  ASSERT_EQ(plain.size(), 3u);
  ASSERT_EQ(parse_dependency_descriptor(plain, state, d), DependencyError::kNone);
  EXPECT_FALSE(d.start_of_frame);
  EXPECT_TRUE(d.end_of_frame);
  EXPECT_EQ(d.template_id, 3);
  EXPECT_EQ(d.frame_number, 0x0103);
  EXPECT_FALSE(d.has_structure);
  EXPECT_EQ(d.spatial, 0);
  EXPECT_EQ(d.temporal, 2);
  ASSERT_EQ(d.fdiff_count, 1);
  EXPECT_EQ(d.fdiffs[0], 1);
  EXPECT_EQ(d.chain_fdiffs[0], 1);
  EXPECT_EQ(d.dtis[2], Dti::kDiscardable);
  // Template 5 does not exist.
  auto unknown = from_bits("1 1 000101 0000000100000100");
  EXPECT_EQ(parse_dependency_descriptor(unknown, state, d), DependencyError::kUnknownTemplate);
}

// Custom DTIs, frame diffs (one of each nibble count) and chain diffs in place of the template's,
// and the active decode targets bitmask, which stays until the next one or the next structure.
TEST(DependencyDescriptor, CustomFieldsAndActiveDecodeTargets) {
  dd::StructureSpec spec = dd::l1t3();
  DependencyState state;
  DependencyDescriptor d;
  ASSERT_EQ(
      parse_dependency_descriptor(dd::descriptor(dd::frame(true, true, 0, 1, &spec)), state, d),
      DependencyError::kNone);
  dd::Frame f;
  f.template_id = 2;
  f.frame_number = 2;
  f.decode_targets = 3;
  f.active = 0x3u;
  f.custom_dtis = "-SS";
  f.custom_fdiffs = std::vector<int>{2, 100, 4000};
  f.custom_chains = std::vector<int>{200};
  ASSERT_EQ(parse_dependency_descriptor(dd::descriptor(f), state, d), DependencyError::kNone);
  EXPECT_TRUE(d.custom_dtis && d.custom_fdiffs && d.custom_chains && d.has_active_decode_targets);
  EXPECT_EQ(d.temporal, 1);
  EXPECT_EQ(d.dtis[0], Dti::kNotPresent);
  EXPECT_EQ(d.dtis[1], Dti::kSwitch);
  ASSERT_EQ(d.fdiff_count, 3);
  EXPECT_EQ(d.fdiffs[0], 2);
  EXPECT_EQ(d.fdiffs[1], 100);
  EXPECT_EQ(d.fdiffs[2], 4000);
  EXPECT_EQ(d.chain_fdiffs[0], 200);
  EXPECT_EQ(state.active_decode_targets, 0x3u);
  ASSERT_EQ(parse_dependency_descriptor(dd::descriptor(dd::frame(true, true, 1, 3)), state, d),
            DependencyError::kNone);
  EXPECT_EQ(state.active_decode_targets, 0x3u);
  // A structure makes every decode target active again.
  ASSERT_EQ(
      parse_dependency_descriptor(dd::descriptor(dd::frame(true, true, 0, 4, &spec)), state, d),
      DependencyError::kNone);
  EXPECT_EQ(state.active_decode_targets, 0x7u);
}

// L3T3: nine decode targets, three chains (ns() values of 1 and 2 bits), template ids wrapping
// past 63, a resolution per spatial layer.
TEST(DependencyDescriptor, ReadsAnL3t3Structure) {
  dd::StructureSpec spec = dd::l3t3();
  DependencyState state;
  DependencyDescriptor d;
  ASSERT_EQ(
      parse_dependency_descriptor(dd::descriptor(dd::frame(true, false, 60, 7, &spec)), state, d),
      DependencyError::kNone);
  const DependencyStructure& s = state.structure;
  EXPECT_EQ(s.template_id_offset, 60);
  EXPECT_EQ(s.decode_targets, 9);
  EXPECT_EQ(s.template_count, 12);
  EXPECT_EQ(s.max_spatial, 2);
  EXPECT_EQ(s.max_temporal, 2);
  EXPECT_EQ(s.chains, 3);
  for (std::uint8_t dt = 0; dt < 9; ++dt) {
    EXPECT_EQ(s.protected_by_chain[dt], dt / 3);
    EXPECT_EQ(s.target_spatial[dt], dt / 3);
    EXPECT_EQ(s.target_temporal[dt], dt % 3);
  }
  EXPECT_EQ(s.width[2], 1280);
  EXPECT_EQ(s.height[1], 360);
  // Template index 7 (S1 T2) is id (60 + 7) % 64 = 3.
  ASSERT_EQ(parse_dependency_descriptor(dd::descriptor(dd::frame(true, true, 3, 8)), state, d),
            DependencyError::kNone);
  EXPECT_EQ(d.spatial, 1);
  EXPECT_EQ(d.temporal, 2);
  ASSERT_EQ(d.fdiff_count, 2);
  EXPECT_EQ(d.fdiffs[0], 3);
  EXPECT_EQ(d.fdiffs[1], 1);
  EXPECT_EQ(d.chain_fdiffs[1], 3);
  // Id 12 is index 16: past the 12 templates.
  EXPECT_EQ(parse_dependency_descriptor(dd::descriptor(dd::frame(true, true, 12, 9)), state, d),
            DependencyError::kUnknownTemplate);
}

// Every prefix of a structure packet is refused and leaves the state as it was; a packet before
// any structure has its mandatory fields read but no layers.
TEST(DependencyDescriptor, RefusesTruncationsAndKeepsTheState) {
  dd::StructureSpec l1 = dd::l1t3();
  dd::StructureSpec l3 = dd::l3t3();
  DependencyState state;
  DependencyDescriptor d;
  EXPECT_EQ(parse_dependency_descriptor(dd::descriptor(dd::frame(true, false, 0, 5)), state, d),
            DependencyError::kNoStructure);
  EXPECT_TRUE(d.start_of_frame);
  EXPECT_EQ(d.frame_number, 5);
  ASSERT_EQ(parse_dependency_descriptor(dd::descriptor(dd::frame(true, true, 0, 1, &l1)), state, d),
            DependencyError::kNone);
  auto full = dd::descriptor(dd::frame(true, false, 60, 2, &l3));
  for (std::size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE(n);
    auto e = parse_dependency_descriptor(Bytes(full.data(), n), state, d);
    // Three bytes are a complete packet of the L1T3 structure (60 is no template of it).
    EXPECT_NE(e, DependencyError::kNone);
    EXPECT_EQ(e, n == 3 ? DependencyError::kUnknownTemplate : DependencyError::kTruncated);
    EXPECT_EQ(state.structure.decode_targets, 3);
    EXPECT_EQ(state.structure.template_count, 5);
  }
  EXPECT_EQ(parse_dependency_descriptor(full, state, d), DependencyError::kNone);
  EXPECT_EQ(state.structure.decode_targets, 9);
}

// A structure attached to an older frame than the one in force (a retransmitted or late packet
// of an earlier keyframe) describes its own packet but does not replace the newer structure.
TEST(DependencyDescriptor, AnOlderStructureDoesNotReplaceANewerOne) {
  dd::StructureSpec l1 = dd::l1t3();
  dd::StructureSpec l3 = dd::l3t3();
  DependencyState state;
  DependencyDescriptor d;
  ASSERT_EQ(
      parse_dependency_descriptor(dd::descriptor(dd::frame(true, false, 0, 65530, &l1)), state, d),
      DependencyError::kNone);
  // Newer across the 16-bit wrap.
  ASSERT_EQ(
      parse_dependency_descriptor(dd::descriptor(dd::frame(true, false, 60, 4, &l3)), state, d),
      DependencyError::kNone);
  EXPECT_EQ(state.structure.decode_targets, 9);
  ASSERT_EQ(
      parse_dependency_descriptor(dd::descriptor(dd::frame(true, false, 0, 65530, &l1)), state, d),
      DependencyError::kNone);
  EXPECT_EQ(d.temporal, 0);
  EXPECT_TRUE(d.stale_structure);
  EXPECT_EQ(state.structure.decode_targets, 9);
  EXPECT_EQ(state.structure_frame, 4);
  // The same frame again (its packet retransmitted) is no older.
  ASSERT_EQ(
      parse_dependency_descriptor(dd::descriptor(dd::frame(true, false, 60, 4, &l3)), state, d),
      DependencyError::kNone);
  EXPECT_EQ(state.structure.decode_targets, 9);
  // Far older is no late packet but a numbering that started again: taken.
  ASSERT_EQ(
      parse_dependency_descriptor(dd::descriptor(dd::frame(true, false, 0, 60000, &l1)), state, d),
      DependencyError::kNone);
  EXPECT_EQ(state.structure.decode_targets, 3);
}

// Past the spec's limits: 65 templates, a fifth spatial layer, a ninth temporal one; more frame
// diffs than we keep.
TEST(DependencyDescriptor, RefusesStructuresPastTheLimits) {
  DependencyState state;
  DependencyDescriptor d;
  auto refused = [&](const dd::StructureSpec& s) {
    return parse_dependency_descriptor(dd::descriptor(dd::frame(true, true, 0, 1, &s)), state, d);
  };
  dd::StructureSpec many;
  many.decode_targets = 1;
  many.templates.assign(65, dd::TemplateSpec{0, 0, "S", {}, {}});
  EXPECT_EQ(refused(many), DependencyError::kBadStructure);
  many.templates.resize(64);
  EXPECT_EQ(refused(many), DependencyError::kNone);
  dd::StructureSpec spatial;
  spatial.decode_targets = 1;
  for (int s = 0; s < 5; ++s) {
    spatial.templates.push_back({s, 0, "S", {}, {}});
  }
  EXPECT_EQ(refused(spatial), DependencyError::kBadStructure);
  dd::StructureSpec temporal;
  temporal.decode_targets = 1;
  for (int t = 0; t < 9; ++t) {
    temporal.templates.push_back({0, t, "S", {}, {}});
  }
  EXPECT_EQ(refused(temporal), DependencyError::kBadStructure);
  dd::StructureSpec fdiffs;
  fdiffs.decode_targets = 1;
  fdiffs.templates.push_back({0, 0, "S", std::vector<int>(17, 1), {}});
  EXPECT_EQ(refused(fdiffs), DependencyError::kTooManyFdiffs);
  // The state is the 64-template one.
  EXPECT_EQ(state.structure.template_count, 64);
  dd::Frame f;
  f.decode_targets = 1;
  f.custom_fdiffs = std::vector<int>(17, 3);
  EXPECT_EQ(parse_dependency_descriptor(dd::descriptor(f), state, d),
            DependencyError::kTooManyFdiffs);
  EXPECT_STREQ(dependency_error_name(DependencyError::kTooManyFdiffs), "too many frame diffs");
}

}  // namespace
}  // namespace ringlane::rtp
