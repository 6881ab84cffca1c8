// The orchestrator's WHIP publishers and WHEP viewers against a recording Link: the session
// commands they push, what signaling participants hear, their end (DELETE, a closed session),
// and the state file that keeps them across a control plane restart.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ringlane/controlplane/media/orchestrator.hpp"
#include "ringlane/shm/media.hpp"
#include "unit/controlplane/sdp_test_util.hpp"

namespace ringlane::control::media {
namespace {

using sdp::fixtures::corpus;
using sdp::fixtures::replaced;

class RecordingLink : public Link {
 public:
  struct Pushed {
    unsigned worker;
    shm::Command type;
    std::vector<std::uint8_t> payload;
  };
  bool push(unsigned worker, shm::Command type, std::span<const std::uint8_t> payload) override {
    pushed.push_back({worker, type, {payload.begin(), payload.end()}});
    return true;
  }
  std::optional<DataPlaneInfo> info() override {
    if (!up) {
      return std::nullopt;
    }
    return DataPlaneInfo{
        "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:A0:B1:C2:D3:E4:F5:06:17:28:39:4A:5B:6C:"
        "7D:8E:9F",
        40000};
  }
  std::vector<Pushed> of(shm::Command type) const {
    std::vector<Pushed> out;
    for (const auto& p : pushed) {
      if (p.type == type) {
        out.push_back(p);
      }
    }
    return out;
  }
  std::vector<Pushed> pushed;
  bool up = true;
};

// Chromium's offer as a WHEP player makes it: its sections recvonly.
std::string viewer_offer() {
  return replaced(corpus("chromium_offer.sdp"), "a=sendrecv", "a=recvonly");
}

struct WhipOrchestrator : ::testing::Test {
  WhipOrchestrator() { make(); }
  ~WhipOrchestrator() override { std::remove(state.c_str()); }

  void make() {
    OrchestratorConfig c;
    c.candidate_ips = {*IpAddress::parse("192.0.2.10")};
    c.state_file = state;
    orchestrator = std::make_unique<Orchestrator>(
        link, c, [this](const std::string&, const std::string& who, std::string text) {
          sent.emplace_back(who, boost::json::parse(text).as_object());
        });
  }
  std::vector<std::string> heard(const std::string& who, const std::string& type) const {
    std::vector<std::string> out;
    for (const auto& [to, m] : sent) {
      if (to == who && m.at("type").as_string() == type) {
        out.push_back(std::string(m.at("participant").as_string()));
      }
    }
    return out;
  }

  std::string state = "/tmp/ringlane-whip-test-" + std::to_string(getpid()) + ".json";
  RecordingLink link;
  std::unique_ptr<Orchestrator> orchestrator;
  std::vector<std::pair<std::string, boost::json::object>> sent;
};

TEST_F(WhipOrchestrator, WhipPublishesAndSignalingHearsIt) {
  orchestrator->join("r1", 1, "bob", true);
  Reply r = orchestrator->whip_publish("r1", 1, "gst", "RES1", corpus("gstreamer_offer.sdp"));
  ASSERT_TRUE(r.code.empty()) << r.message;
  EXPECT_NE(r.body.at("sdp").as_string().find("a=recvonly"), std::string::npos);
  std::string etag(r.body.at("etag").as_string());
  EXPECT_EQ(etag.front(), '"');
  // bob hears gst join, then its two tracks, and gets an offer for them (auto-subscribe).
  EXPECT_EQ(heard("bob", "participant_joined"), (std::vector<std::string>{"gst"}));
  EXPECT_EQ(heard("bob", "track_published").size(), 2u);
  auto creates = link.of(shm::Command::kSessionCreate);
  ASSERT_EQ(creates.size(), 2u);  // gst's publisher session, bob's subscriber session
  auto c = shm::decode_session_create(creates[0].payload);
  ASSERT_TRUE(c);
  EXPECT_EQ(creates[0].worker, 1u);
  EXPECT_FALSE(c->dtls_client);  // GStreamer offered actpass: it connects to the worker
  EXPECT_EQ(link.of(shm::Command::kTrackAdd).size(), 2u);
  auto found = orchestrator->resource("RES1");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->room, "r1");
  EXPECT_EQ(found->member, "gst");
  EXPECT_FALSE(found->viewer);
  EXPECT_EQ(found->etag, etag);
  EXPECT_EQ(found->remote_ufrag, "ULrz");
  EXPECT_EQ(orchestrator->whip_publishers("r1"), (std::vector<std::string>{"gst"}));
  EXPECT_FALSE(orchestrator->resource("nope"));

  // DELETE: its tracks end, it leaves, its session closes.
  EXPECT_TRUE(orchestrator->end_resource("RES1"));
  EXPECT_EQ(heard("bob", "track_unpublished").size(), 2u);
  EXPECT_EQ(heard("bob", "participant_left"), (std::vector<std::string>{"gst"}));
  EXPECT_EQ(link.of(shm::Command::kSessionClose).size(), 1u);
  EXPECT_FALSE(orchestrator->resource("RES1"));
  EXPECT_FALSE(orchestrator->end_resource("RES1"));
}

TEST_F(WhipOrchestrator, WhipRefusals) {
  orchestrator->join("r1", 0, "bob", true);
  Reply r = orchestrator->whip_publish("r1", 0, "bob", "RES1", corpus("gstreamer_offer.sdp"));
  EXPECT_EQ(r.code, "identity_in_use");
  r = orchestrator->whip_publish("r1", 0, "gst", "RES1", "v=0\r\nm=x\r\n");
  EXPECT_EQ(r.code, "bad_sdp");
  // A bad offer leaves no trace: nothing announced, no session.
  EXPECT_TRUE(heard("bob", "participant_joined").empty());
  EXPECT_TRUE(link.of(shm::Command::kSessionCreate).empty());
  EXPECT_FALSE(orchestrator->has_participant("r1", "gst"));
  link.up = false;
  r = orchestrator->whip_publish("r1", 0, "gst", "RES1", corpus("gstreamer_offer.sdp"));
  EXPECT_EQ(r.code, "media_unavailable");
  EXPECT_TRUE(r.retryable);
}

TEST_F(WhipOrchestrator, WhipReplacesTheSameIdentity) {
  orchestrator->join("r1", 0, "bob", true);
  ASSERT_TRUE(
      orchestrator->whip_publish("r1", 0, "gst", "A", corpus("gstreamer_offer.sdp")).code.empty());
  ASSERT_TRUE(
      orchestrator->whip_publish("r1", 0, "gst", "B", corpus("gstreamer_offer.sdp")).code.empty());
  EXPECT_FALSE(orchestrator->resource("A"));
  EXPECT_TRUE(orchestrator->resource("B"));
  EXPECT_EQ(heard("bob", "participant_joined").size(), 1u);  // one participant throughout
  EXPECT_TRUE(heard("bob", "participant_left").empty());
  EXPECT_EQ(heard("bob", "track_unpublished").size(), 2u);
  EXPECT_EQ(heard("bob", "track_published").size(), 4u);
}

TEST_F(WhipOrchestrator, ASignalingJoinOfTheIdentityEndsTheWhipResource) {
  orchestrator->join("r1", 0, "bob", true);
  ASSERT_TRUE(
      orchestrator->whip_publish("r1", 0, "gst", "P", corpus("gstreamer_offer.sdp")).code.empty());
  EXPECT_FALSE(orchestrator->has_participant("r1", "gst"));  // nothing for a client to resume
  boost::json::array tracks = orchestrator->join("r1", 0, "gst", true);
  EXPECT_TRUE(tracks.empty());
  EXPECT_FALSE(orchestrator->resource("P"));
  EXPECT_TRUE(orchestrator->has_participant("r1", "gst"));
  EXPECT_EQ(heard("bob", "participant_left"), (std::vector<std::string>{"gst"}));
  EXPECT_EQ(heard("bob", "track_unpublished").size(), 2u);
}

TEST_F(WhipOrchestrator, WhepViewerIsRoutedAtOnceInItsNumbering) {
  Reply r = orchestrator->whep_view("r1", "viewer", "V", viewer_offer(), "");
  EXPECT_EQ(r.code, "nothing_published");
  orchestrator->join("r1", 0, "bob", true);
  ASSERT_TRUE(
      orchestrator->whip_publish("r1", 0, "gst", "P", corpus("gstreamer_offer.sdp")).code.empty());
  link.pushed.clear();
  sent.clear();
  r = orchestrator->whep_view("r1", "viewer", "V", viewer_offer(), "");
  ASSERT_TRUE(r.code.empty()) << r.message;
  // Its session is created knowing its fingerprint and role, and both tracks are routed.
  auto creates = link.of(shm::Command::kSessionCreate);
  ASSERT_EQ(creates.size(), 1u);
  auto c = shm::decode_session_create(creates[0].payload);
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->dtls_client);
  EXPECT_EQ(c->remote_fingerprint[0], 0x3C);
  auto subs = link.of(shm::Command::kSubscribe);
  ASSERT_EQ(subs.size(), 2u);
  std::vector<int> pts;
  for (const auto& p : subs) {
    auto s = shm::decode_subscribe(p.payload);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->subscriber, c->session);
    pts.push_back(s->payload_type);
  }
  // GStreamer sends OPUS 97 and VP8 96; the viewer gets them as Chromium numbers them: opus 111,
  // VP8 96. (The map has the audio section first, as the offer.)
  std::sort(pts.begin(), pts.end());
  EXPECT_EQ(pts, (std::vector<int>{96, 111}));
  EXPECT_TRUE(sent.empty());  // nobody hears of a viewer
  auto found = orchestrator->resource("V");
  ASSERT_TRUE(found);
  EXPECT_TRUE(found->viewer);
  EXPECT_EQ(found->remote_ufrag, "Kp2V");
  EXPECT_TRUE(orchestrator->whip_publishers("r1") == std::vector<std::string>{"gst"});
  // ?participant= someone who publishes nothing.
  EXPECT_EQ(orchestrator->whep_view("r1", "viewer", "W", viewer_offer(), "bob").code,
            "nothing_published");
  // When the publisher leaves, nothing is sent to the viewer (no events, no new offer).
  orchestrator->end_resource("P");
  EXPECT_FALSE(sent.empty());
  for (const auto& [to, m] : sent) {
    EXPECT_EQ(to, "bob");
  }
  EXPECT_TRUE(orchestrator->end_resource("V"));
  EXPECT_FALSE(orchestrator->resource("V"));
}

TEST_F(WhipOrchestrator, AClosedSessionEndsTheResource) {
  orchestrator->join("r1", 0, "bob", true);
  ASSERT_TRUE(
      orchestrator->whip_publish("r1", 0, "gst", "P", corpus("gstreamer_offer.sdp")).code.empty());
  ASSERT_TRUE(orchestrator->whep_view("r1", "viewer", "V", viewer_offer(), "").code.empty());
  std::vector<std::uint32_t> sessions;
  for (const auto& p : link.of(shm::Command::kSessionCreate)) {
    sessions.push_back(shm::decode_session_create(p.payload)->session.value);
  }
  ASSERT_EQ(sessions.size(), 3u);  // gst, bob's subscriber, the viewer
  // Consent expired on gst's and the viewer's sessions (RFC 7675).
  for (std::uint32_t id : {sessions[0], sessions[2]}) {
    auto e = shm::encode(shm::SessionEvent{shm::SessionId{id}, shm::SessionState::kClosed, 0});
    orchestrator->on_session_event(0, e);
  }
  auto gone = orchestrator->expire(std::chrono::steady_clock::now());
  // Both end; only gst is announced (the signaling server says participant_left for it).
  EXPECT_EQ(gone, (std::vector<std::pair<std::string, std::string>>{{"r1", "gst"}}));
  EXPECT_FALSE(orchestrator->resource("P"));
  EXPECT_FALSE(orchestrator->resource("V"));
  EXPECT_TRUE(orchestrator->has_participant("r1", "bob"));
}

TEST_F(WhipOrchestrator, ResourcesSurviveARestart) {
  orchestrator->join("r1", 1, "bob", true);
  Reply pub = orchestrator->whip_publish("r1", 1, "gst", "P", corpus("gstreamer_offer.sdp"));
  Reply view = orchestrator->whep_view("r1", "viewer", "V", viewer_offer(), "gst");
  ASSERT_TRUE(pub.code.empty() && view.code.empty());
  orchestrator->save();
  link.pushed.clear();
  make();  // a new control plane; the data plane was adopted
  EXPECT_EQ(orchestrator->restore(), 3u);
  auto p = orchestrator->resource("P");
  auto v = orchestrator->resource("V");
  ASSERT_TRUE(p && v);
  EXPECT_EQ(p->etag, std::string(pub.body.at("etag").as_string()));
  EXPECT_EQ(v->etag, std::string(view.body.at("etag").as_string()));
  EXPECT_EQ(orchestrator->resource_rooms(),
            (std::vector<std::pair<std::string, unsigned>>{{"r1", 1}}));
  // bob, a signaling participant, waits for his client; the resources do not: long after the
  // grace only bob is gone.
  auto gone = orchestrator->expire(std::chrono::steady_clock::now() + std::chrono::hours(1));
  EXPECT_EQ(gone, (std::vector<std::pair<std::string, std::string>>{{"r1", "bob"}}));
  EXPECT_TRUE(orchestrator->resource("P"));
  // A later viewer without ?participant= still finds gst's tracks the most recent.
  ASSERT_TRUE(orchestrator->whep_view("r1", "viewer", "W", viewer_offer(), "").code.empty());
  EXPECT_TRUE(orchestrator->end_resource("V"));
  EXPECT_TRUE(orchestrator->end_resource("P"));
  auto closes = link.of(shm::Command::kSessionClose);
  EXPECT_EQ(closes.size(), 3u);  // bob's subscriber, the viewer, gst
  EXPECT_EQ(orchestrator->take_emptied_rooms(), std::vector<std::string>{});
  EXPECT_TRUE(orchestrator->end_resource("W"));
  EXPECT_EQ(orchestrator->take_emptied_rooms(), std::vector<std::string>{"r1"});
}

// The ICE ufrag of an SDP (its first a=ice-ufrag line).
std::string ufrag_of(const std::string& sdp) {
  auto at = sdp.find("a=ice-ufrag:");
  return at == std::string::npos ? "" : sdp.substr(at + 12, sdp.find('\r', at) - at - 12);
}

// RFC 8445 §9: a publisher's re-offer with new credentials restarts ICE on the same session: new
// server credentials (answered, and pushed to the worker), the tracks untouched.
TEST_F(WhipOrchestrator, PublisherIceRestartKeepsItsSessionAndTracks) {
  orchestrator->join("r1", 1, "bob", true);
  Reply r = orchestrator->whip_publish("r1", 1, "gst", "RES1", corpus("gstreamer_offer.sdp"));
  ASSERT_TRUE(r.code.empty()) << r.message;
  std::string first = ufrag_of(std::string(r.body.at("sdp").as_string()));
  ASSERT_FALSE(first.empty());
  auto tracks_before = link.of(shm::Command::kTrackAdd).size();
  auto created = shm::decode_session_create(link.of(shm::Command::kSessionCreate)[0].payload);
  ASSERT_TRUE(created);

  std::string again =
      replaced(replaced(corpus("gstreamer_offer.sdp"), "a=ice-ufrag:ULrz", "a=ice-ufrag:New1"),
               "a=ice-pwd:/Hk3X+mp9fLtq5v0cnT1eB", "a=ice-pwd:NewPassword0123456789ab");
  Reply restarted = orchestrator->publish("r1", "gst", again);
  ASSERT_TRUE(restarted.code.empty()) << restarted.message;
  std::string second = ufrag_of(std::string(restarted.body.at("sdp").as_string()));
  EXPECT_FALSE(second.empty());
  EXPECT_NE(second, first);
  auto pushed = link.of(shm::Command::kSessionIceRestart);
  ASSERT_EQ(pushed.size(), 1u);
  EXPECT_EQ(pushed[0].worker, 1u);
  auto m = shm::decode_session_ice_restart(pushed[0].payload);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->session, created->session);
  EXPECT_EQ(m->ice_ufrag, second);
  EXPECT_NE(restarted.body.at("sdp").as_string().find("a=ice-pwd:" + m->ice_pwd),
            std::string::npos);
  // Nothing else changed: no track ended or began, no second session, bob heard nothing.
  EXPECT_TRUE(link.of(shm::Command::kTrackRemove).empty());
  EXPECT_EQ(link.of(shm::Command::kTrackAdd).size(), tracks_before);
  EXPECT_EQ(link.of(shm::Command::kSessionCreate).size(), 2u);
  EXPECT_TRUE(heard("bob", "track_unpublished").empty());
  // The same credentials again are a plain renegotiation: no further restart.
  ASSERT_TRUE(orchestrator->publish("r1", "gst", again).code.empty());
  EXPECT_EQ(link.of(shm::Command::kSessionIceRestart).size(), 1u);
  // The resource's ETag follows the new ICE session.
  EXPECT_EQ(orchestrator->resource("RES1")->etag, "\"" + second + "\"");
}

// A WHEP viewer's PATCH restart: new credentials pushed, a fragment with them and candidates.
TEST_F(WhipOrchestrator, ResourceIceRestartAnswersAFragment) {
  ASSERT_TRUE(orchestrator->whip_publish("r1", 0, "gst", "RES1", corpus("gstreamer_offer.sdp"))
                  .code.empty());
  Reply v = orchestrator->whep_view("r1", "viewer", "VIEW1", viewer_offer(), "");
  ASSERT_TRUE(v.code.empty()) << v.message;
  std::string before = orchestrator->resource("VIEW1")->etag;
  Reply r = orchestrator->restart_resource("VIEW1", "Vnew");
  ASSERT_TRUE(r.code.empty()) << r.message;
  std::string fragment(r.body.at("fragment").as_string());
  auto pushed = link.of(shm::Command::kSessionIceRestart);
  ASSERT_EQ(pushed.size(), 1u);
  auto m = shm::decode_session_ice_restart(pushed[0].payload);
  ASSERT_TRUE(m);
  EXPECT_EQ(fragment.substr(0, 12), "a=ice-lite\r\n");
  EXPECT_NE(fragment.find("a=ice-ufrag:" + m->ice_ufrag + "\r\n"), std::string::npos);
  EXPECT_NE(fragment.find("a=ice-pwd:" + m->ice_pwd + "\r\n"), std::string::npos);
  EXPECT_NE(fragment.find(" 192.0.2.10 40000 typ host"), std::string::npos);
  EXPECT_NE(fragment.find("a=end-of-candidates"), std::string::npos);
  // It parses as the fragment a client would PATCH.
  sdp::ParseError e;
  auto parsed = sdp::parse_ice_fragment(fragment, e);
  ASSERT_TRUE(parsed) << e.reason;
  EXPECT_EQ(parsed->ufrag, m->ice_ufrag);
  EXPECT_EQ(parsed->candidates, 1u);
  auto after = orchestrator->resource("VIEW1");
  EXPECT_EQ(after->etag, r.body.at("etag").as_string());
  EXPECT_NE(after->etag, before);
  EXPECT_EQ(after->remote_ufrag, "Vnew");
  EXPECT_EQ(orchestrator->restart_resource("nope", "x").code, "not_found");
  link.up = false;
  EXPECT_EQ(orchestrator->restart_resource("VIEW1", "Vnewer").code, "media_unavailable");
}

// The subscriber connection restarts on request: refused before it exists, then pushed and
// offered with the new credentials once the outstanding offer is answered.
TEST_F(WhipOrchestrator, SubscriberIceRestartNeedsASubscriberConnection) {
  orchestrator->join("r1", 0, "bob", true);
  EXPECT_EQ(orchestrator->restart_ice("r1", "bob").code, "bad_message");
  EXPECT_EQ(orchestrator->restart_ice("r1", "nobody").code, "not_joined");
  ASSERT_TRUE(orchestrator->whip_publish("r1", 0, "gst", "RES1", corpus("gstreamer_offer.sdp"))
                  .code.empty());
  auto offers = [&] {
    std::vector<std::string> out;
    for (const auto& [to, msg] : sent) {
      if (to == "bob" && msg.at("type").as_string() == "offer") {
        out.emplace_back(msg.at("sdp").as_string());
      }
    }
    return out;
  };
  ASSERT_EQ(offers().size(), 1u);
  Reply restarted = orchestrator->restart_ice("r1", "bob");
  ASSERT_TRUE(restarted.code.empty()) << restarted.message;
  EXPECT_EQ(restarted.body.at("type").as_string(), "ice_restarted");
  auto pushed = link.of(shm::Command::kSessionIceRestart);
  ASSERT_EQ(pushed.size(), 1u);
  auto m = shm::decode_session_ice_restart(pushed[0].payload);
  ASSERT_TRUE(m);
  EXPECT_NE(ufrag_of(offers()[0]), m->ice_ufrag);
  EXPECT_EQ(offers().size(), 1u);  // one offer at a time: the restart goes into the next
}

// Adaptive quality through the orchestrator: a simulcast publisher's track reaches the worker
// with its rids and extension ids, a viewer's subscription with its transport-wide numbering,
// `layer` becomes kRouteLayer, route reports show in /metrics, and audio levels name the
// active speaker (and give its video priority).
TEST_F(WhipOrchestrator, SimulcastTrackReachesTheWorkerWithItsRids) {
  orchestrator->join("r1", 0, "bob", true);
  Reply r = orchestrator->whip_publish("r1", 0, "cam", "P", corpus("chromium_simulcast_offer.sdp"));
  ASSERT_TRUE(r.code.empty()) << r.message;
  EXPECT_NE(r.body.at("sdp").as_string().find("a=simulcast:recv q;h;f\r\n"), std::string::npos);
  std::vector<shm::TrackAdd> adds;
  for (const auto& p : link.of(shm::Command::kTrackAdd)) {
    auto t = shm::decode_track_add(p.payload);
    ASSERT_TRUE(t);
    adds.push_back(*t);
  }
  ASSERT_EQ(adds.size(), 2u);
  const shm::TrackAdd& audio = adds[0].kind == shm::MediaKind::kAudio ? adds[0] : adds[1];
  const shm::TrackAdd& video = adds[0].kind == shm::MediaKind::kVideo ? adds[0] : adds[1];
  EXPECT_EQ(audio.codec, shm::Codec::kOpus);
  EXPECT_EQ(audio.audio_level_extension, 1);
  EXPECT_EQ(audio.transport_cc_extension, 3);
  EXPECT_TRUE(audio.rids.empty());
  EXPECT_EQ(video.codec, shm::Codec::kVp8);
  EXPECT_EQ(video.rids, (std::vector<std::string>{"q", "h", "f"}));
  EXPECT_EQ(video.rid_extension, 10);
  EXPECT_EQ(video.repaired_rid_extension, 11);
  EXPECT_EQ(video.mid_extension, 4);
  EXPECT_EQ(video.mid, "1");
  EXPECT_NE(video.ssrc, 0u);  // a name chosen here: the SDP has no SSRC
  EXPECT_EQ(video.rtx_ssrc, 0u);
  EXPECT_NE(video.rtx_payload_type, 0);

  // A viewer: its subscriptions carry its transport-wide id, and the simulcast track gets RTX.
  link.pushed.clear();
  ASSERT_TRUE(orchestrator->whep_view("r1", "viewer", "V", viewer_offer(), "").code.empty());
  std::uint32_t viewer_video = 0;
  for (const auto& p : link.of(shm::Command::kSubscribe)) {
    auto sub = shm::decode_subscribe(p.payload);
    ASSERT_TRUE(sub);
    EXPECT_EQ(sub->transport_cc_extension, 3);
    if (sub->publisher_ssrc == video.ssrc) {
      viewer_video = sub->ssrc;
      EXPECT_NE(sub->rtx_ssrc, 0u);
    }
  }
  ASSERT_NE(viewer_video, 0u);

  // `layer` for what the viewer receives: the worker is told.
  std::string track;
  for (const auto& [to, m] : sent) {
    if (m.at("type").as_string() == "track_published" && m.at("kind").as_string() == "video") {
      track = std::string(m.at("track").as_string());
    }
  }
  link.pushed.clear();
  ASSERT_FALSE(track.empty());
  // A WHEP viewer is a member named after its resource.
  const std::string viewer = "whep/V";
  Reply l = orchestrator->layer("r1", viewer, track, 0, false);
  ASSERT_TRUE(l.code.empty()) << l.message;
  auto layers = link.of(shm::Command::kRouteLayer);
  ASSERT_EQ(layers.size(), 1u);
  auto rl = shm::decode_route_layer(layers[0].payload);
  ASSERT_TRUE(rl);
  EXPECT_EQ(rl->ssrc, viewer_video);
  EXPECT_EQ(rl->max_spatial, 0);
  EXPECT_FALSE(rl->paused);
  EXPECT_EQ(orchestrator->layer("r1", viewer, "TR_none", 1, false).code, "unknown_track");

  // A report of that route shows in /metrics, and in the KPIs.
  std::uint32_t viewer_session = rl->subscriber.value;
  shm::RouteReport report;
  report.subscriber = shm::SessionId{viewer_session};
  report.ssrc = viewer_video;
  report.kind = shm::MediaKind::kVideo;
  report.layer = 0;
  report.target = 0;
  report.bitrate_bps = 150000;
  report.frame_rate_milli = 24000;
  report.layer_downs = 2;
  report.temporal = 1;
  report.temporal_target = 2;
  report.keyframe_switches = 3;
  report.estimate_bps = 280000;
  report.rtt_ms = 40;
  report.jitter_ms = 5;
  orchestrator->on_route_report(0, shm::encode(report));
  std::string metrics = orchestrator->metrics();
  EXPECT_NE(metrics.find("ringlane_sfu_route_bitrate_bps{room=\"r1\",participant=\"" + viewer +
                         "\",publisher=\"cam\",track=\"" + track + "\",kind=\"video\"} 150000\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("ringlane_sfu_route_layer{room=\"r1\",participant=\"" + viewer + "\""),
            std::string::npos);
  EXPECT_NE(metrics.find(",reason=\"down\"} 2\n"), std::string::npos);
  EXPECT_NE(metrics.find(",reason=\"keyframe_wait\"} 3\n"), std::string::npos);
  EXPECT_NE(metrics.find(",reason=\"preference\"} 0\n"), std::string::npos);
  EXPECT_NE(metrics.find("ringlane_sfu_route_temporal_layer{room=\"r1\",participant=\"" + viewer +
                         "\",publisher=\"cam\",track=\"" + track + "\",kind=\"video\"} 1\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("ringlane_sfu_route_temporal_layer_target{room=\"r1\""),
            std::string::npos);
  EXPECT_NE(metrics.find("ringlane_sfu_route_layer_target{room=\"r1\""), std::string::npos);
  EXPECT_NE(metrics.find("ringlane_sfu_subscriber_estimate_bps{room=\"r1\",participant=\"" +
                         viewer + "\"} 280000\n"),
            std::string::npos);
  EXPECT_NE(metrics.find("\nvideo_bitrate_avg 150000"), std::string::npos);
  EXPECT_NE(metrics.find("\nvideo_frame_rate_avg 24"), std::string::npos);
  EXPECT_NE(metrics.find("\nend_to_end_latency_p95 25"), std::string::npos);  // 40 / 2 + 5
}

TEST_F(WhipOrchestrator, AudioLevelsNameTheActiveSpeakerAndPrioritizeItsVideo) {
  orchestrator->join("r1", 0, "bob", true);
  ASSERT_TRUE(
      orchestrator->whip_publish("r1", 0, "cam", "P", corpus("chromium_simulcast_offer.sdp"))
          .code.empty());
  auto creates = link.of(shm::Command::kSessionCreate);
  ASSERT_FALSE(creates.empty());
  auto cam = shm::decode_session_create(creates[0].payload)->session;
  std::uint32_t video = 0;
  std::uint32_t audio = 0;
  for (const auto& p : link.of(shm::Command::kTrackAdd)) {
    auto t = shm::decode_track_add(p.payload);
    (t->kind == shm::MediaKind::kVideo ? video : audio) = t->ssrc;
  }
  link.pushed.clear();
  sent.clear();
  // Quiet: nobody speaks, nothing is said.
  orchestrator->on_audio_levels(0, shm::encode(shm::AudioLevels{{{cam, audio, 10}}}));
  EXPECT_TRUE(link.of(shm::Command::kTrackPriority).empty());
  // Loud for a while (the level is smoothed): bob hears cam speaks, cam's video gets priority.
  for (int i = 0; i < 4; ++i) {
    orchestrator->on_audio_levels(0, shm::encode(shm::AudioLevels{{{cam, audio, 105}}}));
  }
  std::vector<boost::json::object> said;
  for (const auto& [to, m] : sent) {
    if (to == "bob" && m.at("type").as_string() == "speakers") {
      said.push_back(m);
    }
  }
  ASSERT_EQ(said.size(), 1u);
  const auto& list = said[0].at("speakers").as_array();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].as_object().at("participant").as_string(), "cam");
  auto prio = link.of(shm::Command::kTrackPriority);
  ASSERT_EQ(prio.size(), 1u);
  auto tp = shm::decode_track_priority(prio[0].payload);
  ASSERT_TRUE(tp);
  EXPECT_EQ(tp->publisher, cam);
  EXPECT_EQ(tp->ssrc, video);
  EXPECT_EQ(tp->priority, 1);
  // A malformed event changes nothing.
  std::vector<std::uint8_t> bad{30};
  orchestrator->on_audio_levels(0, bad);
  EXPECT_EQ(link.of(shm::Command::kTrackPriority).size(), 1u);
}

// Adaptive stream: the publisher tells the sizes of its layers with the publish, a subscriber the
// size it renders a track at; the worker is told the smallest layer that covers it, the lower of
// that and the subscriber's wish, and nothing while it is not shown.
TEST_F(WhipOrchestrator, RenderedSizeChoosesTheSmallestLayerThatCoversIt) {
  EXPECT_EQ(spatial_for_size({}, 100, 100), 2) << "sizes unknown: no limit";
  const std::vector<signaling::LayerSize> sizes = {{240, 135}, {480, 270}, {960, 540}};
  EXPECT_EQ(spatial_for_size(sizes, 240, 135), 0);
  EXPECT_EQ(spatial_for_size(sizes, 241, 100), 1);
  EXPECT_EQ(spatial_for_size(sizes, 400, 300), 2) << "taller than the middle layer";
  EXPECT_EQ(spatial_for_size(sizes, 1920, 1080), 2) << "none covers it: the largest";

  orchestrator->join("r1", 0, "bob", true);
  Reply pub = orchestrator->publish("r1", "bob", corpus("chromium_simulcast_offer.sdp"),
                                    {{signaling::SectionLayers{"1", sizes}}, {}});
  ASSERT_TRUE(pub.code.empty()) << pub.message;
  std::string track;
  for (const auto& t : pub.body.at("tracks").as_array()) {
    if (t.at("kind").as_string() == "video") {
      track = std::string(t.at("track").as_string());
    }
  }
  ASSERT_FALSE(track.empty());
  ASSERT_TRUE(orchestrator->whep_view("r1", "viewer", "V", viewer_offer(), "").code.empty());
  const std::string viewer = "whep/V";
  auto told = [&]() -> std::optional<shm::RouteLayer> {
    auto layers = link.of(shm::Command::kRouteLayer);
    if (layers.empty()) {
      return std::nullopt;
    }
    return shm::decode_route_layer(layers.back().payload);
  };
  struct Case {
    std::uint32_t width, height;
    std::uint8_t spatial;
    bool paused;
  };
  for (Case c : {Case{400, 225, 1, false}, Case{200, 112, 0, false}, Case{1280, 720, 2, false},
                 Case{0, 0, 2, true}, Case{640, 360, 2, false}}) {
    link.pushed.clear();
    Reply r = orchestrator->render_size("r1", viewer, track, c.width, c.height);
    ASSERT_TRUE(r.code.empty()) << r.message;
    EXPECT_EQ(r.body.at("spatial").to_number<int>(), c.spatial) << c.width << "x" << c.height;
    EXPECT_EQ(r.body.at("paused").as_bool(), c.paused) << c.width << "x" << c.height;
    auto m = told();
    ASSERT_TRUE(m) << "the worker is told at " << c.width << "x" << c.height;
    EXPECT_EQ(m->max_spatial, c.spatial);
    EXPECT_EQ(m->paused, c.paused);
  }
  // The same size again tells the worker nothing new.
  link.pushed.clear();
  ASSERT_TRUE(orchestrator->render_size("r1", viewer, track, 640, 360).code.empty());
  EXPECT_FALSE(told());
  // A wish for less than the size allows wins; for more, the size does.
  ASSERT_TRUE(orchestrator->layer("r1", viewer, track, 0, false).code.empty());
  EXPECT_EQ(told()->max_spatial, 0);
  ASSERT_TRUE(orchestrator->render_size("r1", viewer, track, 200, 112).code.empty());
  ASSERT_TRUE(orchestrator->layer("r1", viewer, track, 2, false).code.empty());
  EXPECT_EQ(told()->max_spatial, 0);
  // The publisher's camera changes size: the same tile maps anew.
  link.pushed.clear();
  const std::vector<signaling::LayerSize> small = {{80, 45}, {160, 90}, {320, 180}};
  ASSERT_TRUE(orchestrator
                  ->publish("r1", "bob", corpus("chromium_simulcast_offer.sdp"),
                            {{signaling::SectionLayers{"1", small}}, {}})
                  .code.empty());
  ASSERT_TRUE(told());
  EXPECT_EQ(told()->max_spatial, 2);
  EXPECT_EQ(orchestrator->render_size("r1", viewer, "TR_none", 1, 1).code, "unknown_track");
  // Kept across a control plane restart: the publisher's sizes and the size rendered.
  ASSERT_TRUE(orchestrator->layer("r1", viewer, track, 2, false).code.empty());
  ASSERT_TRUE(orchestrator->render_size("r1", viewer, track, 160, 90).code.empty());
  orchestrator->save();
  make();
  ASSERT_GT(orchestrator->restore(), 0u);
  link.pushed.clear();
  Reply again = orchestrator->render_size("r1", viewer, track, 160, 90);
  ASSERT_TRUE(again.code.empty()) << again.message;
  EXPECT_EQ(again.body.at("spatial").to_number<int>(), 1);
  EXPECT_FALSE(told()) << "the same size as before the restart: nothing new";
}

// A screen share (publish `screen`): announced with source "screen", first in the bandwidth
// (priority 2, above the active speaker's 1) from the start, and the active speaker's priority
// leaves it there.
TEST_F(WhipOrchestrator, AScreenShareGoesFirstAndTheSpeakerDoesNotMoveIt) {
  orchestrator->join("r1", 0, "bob", true);
  orchestrator->join("r1", 0, "ann", true);
  sent.clear();
  link.pushed.clear();
  Reply pub =
      orchestrator->publish("r1", "ann", corpus("chromium_simulcast_offer.sdp"), {{}, {"1"}});
  ASSERT_TRUE(pub.code.empty()) << pub.message;
  shm::SessionId ann{};
  std::uint32_t video = 0;
  std::uint32_t audio = 0;
  for (const auto& p : link.of(shm::Command::kTrackAdd)) {
    auto t = shm::decode_track_add(p.payload);
    (t->kind == shm::MediaKind::kVideo ? video : audio) = t->ssrc;
    ann = t->session;
  }
  auto prio = link.of(shm::Command::kTrackPriority);
  ASSERT_EQ(prio.size(), 1u);
  auto tp = shm::decode_track_priority(prio[0].payload);
  ASSERT_TRUE(tp);
  EXPECT_EQ(tp->publisher, ann);
  EXPECT_EQ(tp->ssrc, video);
  EXPECT_EQ(tp->priority, 2);
  std::map<std::string, std::string> sources;
  for (const auto& [to, m] : sent) {
    if (to == "bob" && m.at("type").as_string() == "track_published") {
      sources[std::string(m.at("kind").as_string())] = m.at("source").as_string();
    }
  }
  EXPECT_EQ(sources["video"], "screen");
  EXPECT_EQ(sources["audio"], "microphone");
  // ann speaks: the speaker's video would get 1, but hers is a screen share: it keeps 2.
  link.pushed.clear();
  sent.clear();
  for (int i = 0; i < 4; ++i) {
    orchestrator->on_audio_levels(0, shm::encode(shm::AudioLevels{{{ann, audio, 105}}}));
  }
  bool told = false;
  for (const auto& [to, m] : sent) {
    told = told || (to == "bob" && m.at("type").as_string() == "speakers");
  }
  EXPECT_TRUE(told) << "ann is the active speaker";
  EXPECT_TRUE(link.of(shm::Command::kTrackPriority).empty());
  // A restarted control plane still knows it for a screen share.
  orchestrator->save();
  make();
  ASSERT_GT(orchestrator->restore(), 0u);
  link.pushed.clear();
  for (int i = 0; i < 8; ++i) {
    orchestrator->on_audio_levels(0, shm::encode(shm::AudioLevels{{{ann, audio, 10}}}));
    orchestrator->on_audio_levels(0, shm::encode(shm::AudioLevels{{{ann, audio, 110}}}));
  }
  EXPECT_TRUE(link.of(shm::Command::kTrackPriority).empty());
}

}  // namespace
}  // namespace ringlane::control::media
