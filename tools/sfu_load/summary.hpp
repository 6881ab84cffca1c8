#pragma once
// sfu_load's summary: what was sent inside the measured window, what each subscriber received
// of it from each publisher, latency, connect times and the tool's own CPU; as JSON (--json)
// and one human line.
#include <sys/resource.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "sfu_load/options.hpp"
#include "sfu_load/participant.hpp"
#include "sfu_load/report.hpp"

namespace sfu_load {

struct RunFacts {
  const Options& o;
  const std::vector<std::unique_ptr<Participant>>& people;
  const std::array<LatencyHistogram, 2>& latency;
  double setup_s = 0;
  double window_s = 0;
  bool setup_complete = false;
  double cpu_window_s = 0;
  double cpu_total_s = 0;
  double wall_total_s = 0;
  std::uint64_t integrity_failures = 0;
};

inline json::object latency_json(const LatencyHistogram& h) {
  return json::object{
      {"count", h.count()}, {"p50", h.quantile(0.5)}, {"p99", h.quantile(0.99)}, {"max", h.max()}};
}

inline json::object spread_json(const std::vector<double>& v) {
  return json::object{{"count", v.size()},
                      {"p50", percentile(v, 0.5)},
                      {"p95", percentile(v, 0.95)},
                      {"max", percentile(v, 1.0)}};
}

inline json::object switch_json(const std::vector<double>& v) {
  return json::object{{"count", v.size()},
                      {"p50", percentile(v, 0.5)},
                      {"p99", percentile(v, 0.99)},
                      {"max", percentile(v, 1.0)}};
}

inline int summarize(const RunFacts& f) {
  const auto& people = f.people;
  std::array<std::uint64_t, 2> sent{}, expected{}, received{};
  std::uint64_t received_total = 0, out_of_order = 0, duplicates = 0, header_mismatches = 0;
  std::uint64_t seq_offset_changes = 0;
  std::uint64_t unknown_ssrc = 0, malformed = 0, plis = 0, nacks = 0;
  std::uint64_t srtp_failures = 0, srtcp_failures = 0, send_errors = 0;
  std::size_t streams_expected = 0, streams_flowing = 0;
  json::array missing, errors;
  std::vector<double> ice_ms[2], dtls_ms[2], join_ms;
  unsigned joined = 0, pub_connected = 0, sub_connected = 0, failed = 0;

  for (const auto& q : people) {
    for (int k = 0; k < 2; ++k) {
      const Outgoing& out = q->out[k];
      if (out.window_any) {
        sent[k] += out.window_last - out.window_first + 1;
      }
    }
  }
  for (const auto& p : people) {
    joined += p->joined_ns != 0 ? 1 : 0;
    if (p->joined_ns != 0) {
      join_ms.push_back(static_cast<double>(p->joined_ns - p->started_ns) / 1e6);
    }
    failed += p->failed ? 1 : 0;
    if (p->failed && errors.size() < 10) {
      errors.emplace_back(p->error);
    }
    plis += p->plis_received;
    nacks += p->nacks_received;
    unknown_ssrc += p->unknown_ssrc;
    malformed += p->malformed;
    header_mismatches += p->header_mismatches;
    for (int which = 0; which < 2; ++which) {
      const Transport* t = which == 0 ? p->pub.get() : p->sub.get();
      if (t == nullptr) {
        continue;
      }
      srtp_failures += t->counters().srtp_failures;
      srtcp_failures += t->counters().srtcp_failures;
      send_errors += t->counters().send_errors;
      if (t->started() && t->ice_ok()) {
        ice_ms[which].push_back(static_cast<double>(t->ice_ns() - t->started_ns()) / 1e6);
      }
      if (t->started() && t->connected()) {
        dtls_ms[which].push_back(static_cast<double>(t->connected_ns() - t->started_ns()) / 1e6);
        (which == 0 ? pub_connected : sub_connected) += 1;
      }
    }
    for (const auto& [ssrc, s] : p->streams) {
      received_total += s.packets;
      out_of_order += s.out_of_order;
      duplicates += s.duplicates;
      seq_offset_changes += s.seq_offset_changes;
    }
    // Every publisher it receives (over the WebSocket all others, over WHEP the one it plays),
    // both kinds: what that publisher sent in the window, against what arrived.
    for (unsigned source : p->sources) {
      const auto& q = people[source];
      for (int k = 0; k < 2; ++k) {
        ++streams_expected;
        const Outgoing& out = q->out[k];
        const ReceivedStream* got = nullptr;
        for (const auto& [ssrc, s] : p->streams) {
          if (s.publisher == q->index && s.video == (k == 1)) {
            got = &s;
          }
        }
        std::uint64_t in_window = out.window_any ? out.window_last - out.window_first + 1 : 0;
        std::uint64_t r =
            got != nullptr && out.window_any
                ? got->received_in(out.window_first - out.initial, out.window_last - out.initial)
                : 0;
        expected[k] += in_window;
        received[k] += r;
        if (r > 0) {
          ++streams_flowing;
        } else if (missing.size() < 20) {
          missing.emplace_back(p->identity + " <- " + q->identity + " " +
                               kind_name(static_cast<Kind>(k)));
        }
      }
    }
  }
  auto loss = [](std::uint64_t e, std::uint64_t r) {
    return e == 0 ? 0.0 : 1.0 - static_cast<double>(r) / static_cast<double>(e);
  };
  LatencyHistogram all;
  all.merge(f.latency[0]);
  all.merge(f.latency[1]);
  std::vector<double> ice_all = ice_ms[0], dtls_all = dtls_ms[0];
  ice_all.insert(ice_all.end(), ice_ms[1].begin(), ice_ms[1].end());
  dtls_all.insert(dtls_all.end(), dtls_ms[1].begin(), dtls_ms[1].end());
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  unsigned publishers = 0;
  for (const auto& p : people) {
    publishers += p->publishes ? 1 : 0;
  }
  std::uint64_t lost = expected[0] + expected[1] - received[0] - received[1];
  // --simulcast: what came of the layers, the server's RTX stream, feedback and switches.
  std::array<std::uint64_t, kLayers> layer_packets{};
  std::uint64_t padding = 0, rtx = 0, feedbacks = 0, switch_timeouts = 0, not_at_key = 0;
  std::array<std::vector<double>, 2> switch_ms;  // down, up
  for (const auto& p : people) {
    for (unsigned l = 0; l < kLayers; ++l) {
      layer_packets[l] += p->layer_packets[l];
    }
    padding += p->padding_received;
    rtx += p->rtx_received;
    feedbacks += p->feedbacks_sent;
    switch_timeouts += p->switch_timeouts;
    not_at_key += p->switch_not_at_keyframe;
    for (int d = 0; d < 2; ++d) {
      switch_ms[d].insert(switch_ms[d].end(), p->switch_ms[d].begin(), p->switch_ms[d].end());
    }
  }
  json::object o{
      {"participants", people.size()},
      {"publishers", publishers},
      {"room", f.o.room},
      {"video_kbps", f.o.video_kbps},
      {"setup_complete", f.setup_complete},
      {"setup_s", f.setup_s},
      {"window_s", f.window_s},
      {"joined", joined},
      {"failed", failed},
      {"publishers_connected", pub_connected},
      {"subscribers_connected", sub_connected},
      {"streams_expected", streams_expected},
      {"streams_flowing", streams_flowing},
      {"missing_streams", missing},
      {"sent", json::object{{"audio", sent[0]}, {"video", sent[1]}}},
      {"expected", json::object{{"audio", expected[0]}, {"video", expected[1]}}},
      {"received", json::object{{"audio", received[0]}, {"video", received[1]}}},
      {"received_total", received_total},
      {"lost", lost},
      {"loss", json::object{{"audio", loss(expected[0], received[0])},
                            {"video", loss(expected[1], received[1])},
                            {"all", loss(expected[0] + expected[1], received[0] + received[1])}}},
      {"out_of_order", out_of_order},
      {"duplicates", duplicates},
      {"sequence_offset_changes", seq_offset_changes},
      {"integrity_failures", f.integrity_failures},
      {"header_mismatches", header_mismatches},
      {"unknown_ssrc", unknown_ssrc},
      {"malformed", malformed},
      {"srtp_failures", srtp_failures},
      {"srtcp_failures", srtcp_failures},
      {"send_errors", send_errors},
      {"plis_received", plis},
      {"nacks_received", nacks},
      {"latency_us", json::object{{"audio", latency_json(f.latency[0])},
                                  {"video", latency_json(f.latency[1])},
                                  {"all", latency_json(all)}}},
      {"connect_ms", json::object{{"ice", spread_json(ice_all)},
                                  {"ice_dtls", spread_json(dtls_all)},
                                  {"publisher_ice_dtls", spread_json(dtls_ms[0])},
                                  {"subscriber_ice_dtls", spread_json(dtls_ms[1])}}},
      {"join_ms", spread_json(join_ms)},
      {"tool_cpu",
       json::object{{"window_s", f.cpu_window_s},
                    {"window_fraction", f.window_s > 0 ? f.cpu_window_s / f.window_s : 0},
                    {"total_s", f.cpu_total_s},
                    {"wall_s", f.wall_total_s},
                    {"max_rss_kib", ru.ru_maxrss}}},
      {"errors", errors},
  };
  std::vector<double> all_switches = switch_ms[0];
  all_switches.insert(all_switches.end(), switch_ms[1].begin(), switch_ms[1].end());
  if (f.o.simulcast) {
    o["simulcast"] = json::object{
        {"layer_packets", json::array{layer_packets[0], layer_packets[1], layer_packets[2]}},
        {"padding_received", padding},
        {"rtx_received", rtx},
        {"feedbacks_sent", feedbacks},
        {"switches", json::object{{"down_ms", switch_json(switch_ms[0])},
                                  {"up_ms", switch_json(switch_ms[1])},
                                  {"all_ms", switch_json(all_switches)},
                                  {"timeouts", switch_timeouts},
                                  {"not_at_keyframe", not_at_key}}}};
    std::printf(
        "sfu_load: simulcast: layer packets q %llu h %llu f %llu, padding %llu, rtx %llu, "
        "feedbacks %llu; switches down %zu (p50 %.1f ms, p99 %.1f ms), up %zu (p50 %.1f ms, "
        "p99 %.1f ms), timeouts %llu, not at a keyframe %llu\n",
        static_cast<unsigned long long>(layer_packets[0]),
        static_cast<unsigned long long>(layer_packets[1]),
        static_cast<unsigned long long>(layer_packets[2]), static_cast<unsigned long long>(padding),
        static_cast<unsigned long long>(rtx), static_cast<unsigned long long>(feedbacks),
        switch_ms[0].size(), percentile(switch_ms[0], 0.5), percentile(switch_ms[0], 0.99),
        switch_ms[1].size(), percentile(switch_ms[1], 0.5), percentile(switch_ms[1], 0.99),
        static_cast<unsigned long long>(switch_timeouts),
        static_cast<unsigned long long>(not_at_key));
  }
  if (!f.o.json_out.empty()) {
    std::ofstream(f.o.json_out) << json::serialize(o) << "\n";
  }
  std::printf(
      "sfu_load: %zu participants (%u publishing), %.1f s window: video %llu/%llu audio "
      "%llu/%llu received, loss %.3f%%, out of order %llu, integrity failures %llu, streams "
      "%zu/%zu, latency p50 %.0f us p99 %.0f us max %llu us, ICE+DTLS p95 %.1f ms, tool CPU "
      "%.1f%%%s\n",
      people.size(), publishers, f.window_s, static_cast<unsigned long long>(received[1]),
      static_cast<unsigned long long>(expected[1]), static_cast<unsigned long long>(received[0]),
      static_cast<unsigned long long>(expected[0]),
      100 * loss(expected[0] + expected[1], received[0] + received[1]),
      static_cast<unsigned long long>(out_of_order),
      static_cast<unsigned long long>(f.integrity_failures), streams_flowing, streams_expected,
      all.quantile(0.5), all.quantile(0.99), static_cast<unsigned long long>(all.max()),
      percentile(dtls_all, 0.95), f.window_s > 0 ? 100 * f.cpu_window_s / f.window_s : 0.0,
      f.setup_complete ? "" : " (setup incomplete)");
  for (const auto& e : errors) {
    std::printf("sfu_load: %s\n", std::string(e.as_string()).c_str());
  }
  bool clean = f.setup_complete && failed == 0 && f.integrity_failures == 0 &&
               header_mismatches == 0 && streams_flowing == streams_expected &&
               switch_timeouts == 0 && not_at_key == 0;
  return clean ? 0 : 1;
}

}  // namespace sfu_load
