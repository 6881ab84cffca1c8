#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "ringlane/controlplane/signaling/message.hpp"
#include "ringlane/controlplane/signaling/token.hpp"
#include "ringlane/crypto/jwt.hpp"

namespace ringlane::control::signaling {
namespace {

ParseError error_of(std::string_view text) {
  auto r = parse_client_message(text);
  EXPECT_TRUE(std::holds_alternative<ParseError>(r)) << text;
  return std::holds_alternative<ParseError>(r) ? std::get<ParseError>(r) : ParseError{};
}

TEST(SignalingMessage, ParsesEachType) {
  auto join = std::get<ClientMessage>(
      parse_client_message(R"({"type":"join","room":"a.b:c-1_2","id":42})"));
  EXPECT_EQ(join.type, ClientType::kJoin);
  EXPECT_EQ(join.room, "a.b:c-1_2");
  EXPECT_EQ(join.id, "42");
  auto auth =
      std::get<ClientMessage>(parse_client_message(R"({"type":"auth","token":"t","id":"q"})"));
  EXPECT_EQ(auth.type, ClientType::kAuth);
  EXPECT_EQ(auth.token, "t");
  EXPECT_EQ(auth.id, "\"q\"");
  EXPECT_EQ(std::get<ClientMessage>(parse_client_message(R"({"type":"leave"})")).type,
            ClientType::kLeave);
  EXPECT_EQ(std::get<ClientMessage>(parse_client_message(R"({"type":"ping"})")).type,
            ClientType::kPing);
  auto media = std::get<ClientMessage>(parse_client_message(R"({"type":"publish","sdp":"v=0"})"));
  EXPECT_EQ(media.type, ClientType::kMedia);
  EXPECT_EQ(media.media_type, "publish");
  EXPECT_EQ(media.sdp, "v=0");
  auto answer =
      std::get<ClientMessage>(parse_client_message(R"({"type":"answer","seq":3,"sdp":"v=0"})"));
  EXPECT_EQ(answer.seq, 3u);
  auto mute = std::get<ClientMessage>(
      parse_client_message(R"({"type":"mute","track":"TR_a","muted":true})"));
  EXPECT_EQ(mute.track, "TR_a");
  EXPECT_EQ(mute.muted, true);
  auto quiet =
      std::get<ClientMessage>(parse_client_message(R"({"type":"join","auto_subscribe":false})"));
  EXPECT_EQ(quiet.auto_subscribe, false);
  // The server sends offers; a client offer is no message of this protocol.
  EXPECT_EQ(std::get<ParseError>(parse_client_message(R"({"type":"offer"})")).code, "unknown_type");
}

TEST(SignalingMessage, RefusesBadMediaFields) {
  EXPECT_EQ(error_of(R"({"type":"publish","sdp":7})").code, "bad_message");
  EXPECT_EQ(error_of(R"({"type":"mute","track":"t","muted":"yes"})").code, "bad_message");
  EXPECT_EQ(error_of(R"({"type":"answer","seq":-1,"sdp":""})").code, "bad_message");
  EXPECT_EQ(error_of(R"({"type":"join","auto_subscribe":1})").code, "bad_message");
  std::string big = R"({"type":"publish","sdp":")" + std::string(70000, 'a') + R"("})";
  EXPECT_EQ(error_of(big).code, "bad_message");
}

// The rendered size of a received track, and the publisher's layer sizes by m-section.
TEST(SignalingMessage, LayerSizes) {
  auto size = std::get<ClientMessage>(
      parse_client_message(R"({"type":"layer","track":"TR_a","width":640,"height":360})"));
  EXPECT_EQ(size.width, 640u);
  EXPECT_EQ(size.height, 360u);
  EXPECT_FALSE(size.spatial);
  auto pub = std::get<ClientMessage>(parse_client_message(
      R"({"type":"publish","sdp":"v=0","layers":{"1":[{"width":240,"height":135},)"
      R"({"width":960,"height":540}],"3":[{"width":0,"height":0}]}})"));
  ASSERT_EQ(pub.hints.layers.size(), 2u);
  EXPECT_EQ(pub.hints.layers[0].mid, "1");
  EXPECT_EQ(pub.hints.layers[0].sizes, (std::vector<LayerSize>{{240, 135}, {960, 540}}));
  EXPECT_EQ(pub.hints.layers[1].sizes, (std::vector<LayerSize>{{0, 0}}));
  auto screen = std::get<ClientMessage>(
      parse_client_message(R"({"type":"publish","sdp":"v=0","screen":["2","3"]})"));
  EXPECT_EQ(screen.hints.screen, (std::vector<std::string>{"2", "3"}));
  for (const char* bad : {
           R"({"type":"layer","track":"t","width":-1,"height":1})",
           R"({"type":"layer","track":"t","width":16385,"height":1})",
           R"({"type":"layer","track":"t","width":"640","height":1})",
           R"({"type":"layer","track":"t","width":1.5,"height":1})",
           R"({"type":"publish","sdp":"v=0","layers":[]})",
           R"({"type":"publish","sdp":"v=0","screen":"1"})",
           R"({"type":"publish","sdp":"v=0","screen":[1]})",
           R"({"type":"publish","sdp":"v=0","layers":{"1":[]}})",
           R"({"type":"publish","sdp":"v=0","layers":{"1":{"width":1,"height":1}}})",
           R"({"type":"publish","sdp":"v=0","layers":{"1":[{"width":1}]}})",
           R"({"type":"publish","sdp":"v=0","layers":{"1":[{"width":1,"height":1},)"
           R"({"width":1,"height":1},{"width":1,"height":1},{"width":1,"height":1}]}})",
       }) {
    EXPECT_EQ(error_of(bad).code, "bad_message") << bad;
  }
  std::string many = R"({"type":"publish","sdp":"v=0","layers":{)";
  for (int i = 0; i < 17; ++i) {
    many += (i ? "," : "") + ("\"" + std::to_string(i) + "\":[{\"width\":1,\"height\":1}]");
  }
  EXPECT_EQ(error_of(many + "}}").code, "bad_message");
}

TEST(SignalingMessage, RefusesWithCodes) {
  EXPECT_EQ(error_of("{").code, "bad_json");
  EXPECT_EQ(error_of("").code, "bad_json");
  EXPECT_EQ(error_of("\"join\"").code, "bad_message");
  EXPECT_EQ(error_of(R"({"type":7})").code, "bad_message");
  EXPECT_EQ(error_of(R"({"type":"join","room":""})").code, "bad_message");
  EXPECT_EQ(error_of(R"({"type":"join","room":"a/b"})").code, "bad_message");
  EXPECT_EQ(error_of(R"({"type":"join","id":{"x":1}})").code, "bad_message");
  EXPECT_EQ(error_of(R"({"type":"auth"})").code, "bad_message");
  EXPECT_EQ(
      error_of(std::string(R"({"type":"join","room":")") + std::string(129, 'a') + "\"}").code,
      "bad_message");
  auto unknown = error_of(R"({"type":"x\u0001y","id":5})");
  EXPECT_EQ(unknown.code, "unknown_type");
  EXPECT_EQ(unknown.id, "5");
  EXPECT_EQ(unknown.message.find('\x01'), std::string::npos);
  EXPECT_EQ(
      error_of("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]")
          .code,
      "bad_json");
  // Invalid UTF-8 is not JSON text (RFC 8259 §8.1).
  EXPECT_EQ(error_of("{\"type\":\"\xff\"}").code, "bad_json");
}

TEST(SignalingMessage, ErrorReplyIsJsonWithTheId) {
  auto v = boost::json::parse(error_reply("room_full", "full \"r\"", false, "\"abc\""));
  EXPECT_EQ(v.at("type").as_string(), "error");
  EXPECT_EQ(v.at("code").as_string(), "room_full");
  EXPECT_EQ(v.at("id").as_string(), "abc");
  EXPECT_EQ(v.at("retryable").as_bool(), false);
}

TEST(JoinToken, IssuedTokenVerifies) {
  std::vector<std::string> secrets = {"0123456789abcdef0123"};
  std::string token = issue_token(Grant{"alice", "r1", 2000}, secrets[0], 1000);
  TokenError e;
  auto g = verify_token(token, secrets, 1500, e);
  ASSERT_TRUE(g.has_value()) << e.message;
  EXPECT_EQ(g->identity, "alice");
  EXPECT_EQ(g->room, "r1");
  EXPECT_EQ(g->expires_at, 2000);
  // Expiry with leeway.
  EXPECT_TRUE(verify_token(token, secrets, 2000 + kTokenLeewaySeconds, e));
  EXPECT_FALSE(verify_token(token, secrets, 2001 + kTokenLeewaySeconds, e));
  EXPECT_EQ(e.code, "token_expired");
}

TEST(JoinToken, RefusesMissingClaimsAndOtherAlgorithms) {
  std::vector<std::string> secrets = {"0123456789abcdef0123"};
  TokenError e;
  for (const char* claims : {R"({"room":"r","exp":9999999999})", R"({"sub":"a","exp":9999999999})",
                             R"({"sub":"a","room":"r"})", R"({"sub":"a","room":"r","exp":"soon"})",
                             R"({"sub":"a","room":"bad room","exp":9999999999})", "[]"}) {
    EXPECT_FALSE(verify_token(crypto::jws_sign_hs256(claims, secrets[0]), secrets, 1000, e))
        << claims;
    EXPECT_EQ(e.code, "bad_token") << claims;
  }
  // Signed correctly, but the header names another algorithm: refused (RFC 8725 §3.1).
  auto b64 = [](std::string_view s) {
    return crypto::base64url_encode({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
  };
  std::string input =
      b64(R"({"alg":"HS512"})") + "." + b64(R"({"sub":"a","room":"r","exp":9999999999})");
  auto mac = crypto::hmac_sha256(
      {reinterpret_cast<const std::uint8_t*>(secrets[0].data()), secrets[0].size()},
      {{reinterpret_cast<const std::uint8_t*>(input.data()), input.size()}});
  EXPECT_FALSE(verify_token(input + "." + crypto::base64url_encode(mac), secrets, 1000, e));
  EXPECT_EQ(e.message, "token alg must be HS256");
}

}  // namespace
}  // namespace ringlane::control::signaling
