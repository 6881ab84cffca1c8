// A real worker (its own thread, io backend and UDP sockets on loopback) takes a new TURN
// policy through its command ring and uses it at once, without a restart.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ringlane/dataplane/io/sockaddr.hpp"
#include "ringlane/dataplane/stun/builder.hpp"
#include "ringlane/dataplane/worker.hpp"
#include "ringlane/shm/commands.hpp"
#include "ringlane/shm/messages.hpp"
#include "ringlane/shm/region.hpp"

namespace ringlane {
namespace {

std::uint16_t free_udp_port() {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  socklen_t len = sizeof(sa);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  close(fd);
  return ntohs(sa.sin_port);
}

// Allocate with long-term credentials over a real socket; returns the final class.
std::optional<stun::Class> allocate(const Endpoint& server, const std::string& user,
                                    const std::string& pass) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in6 sa{};
  socklen_t len = io::to_sockaddr(server, sa);
  std::vector<std::uint8_t> buf(1500), reply(1500);
  auto exchange = [&](Bytes req) -> std::optional<stun::Message> {
    sendto(fd, req.data(), req.size(), 0, reinterpret_cast<sockaddr*>(&sa), len);
    ssize_t n = recv(fd, reply.data(), reply.size(), 0);
    if (n <= 0)
      return std::nullopt;
    return stun::Message::parse(Bytes(reply.data(), static_cast<std::size_t>(n)));
  };
  stun::TransactionId tid{};
  tid[0] = 1;
  stun::Builder first(buf, stun::Method::kAllocate, stun::Class::kRequest, tid);
  first.add_u32(stun::attr::kRequestedTransport, 17u << 24);
  auto challenge = exchange(first.bytes());
  if (!challenge)
    return std::nullopt;
  std::string realm(challenge->find_string(stun::attr::kRealm).value_or(""));
  std::string nonce(challenge->find_string(stun::attr::kNonce).value_or(""));
  tid[0] = 2;
  stun::Builder b(buf, stun::Method::kAllocate, stun::Class::kRequest, tid);
  b.add_u32(stun::attr::kRequestedTransport, 17u << 24);
  b.add_string(stun::attr::kUsername, user);
  b.add_string(stun::attr::kRealm, realm);
  b.add_string(stun::attr::kNonce, nonce);
  b.add_integrity(stun::long_term_key(user, realm, pass));
  auto answer = exchange(b.bytes());
  close(fd);
  if (!answer)
    return std::nullopt;
  return answer->message_class();
}

std::optional<shm::MessageView> wait_event(shm::SpscRing& events) {
  for (int i = 0; i < 500; ++i) {
    if (auto m = events.front())
      return m;
    usleep(10'000);
  }
  return std::nullopt;
}

TEST(WorkerPolicy, NewPolicyThroughTheRingTakesEffectWithoutRestart) {
  std::string error;
  auto region = shm::Region::create("worker-test", 1, 64, 64, error);
  ASSERT_TRUE(region) << error;
  shm::Doorbell bell;
  auto policy = std::make_shared<turn::Policy>();
  policy->realm = "test";
  policy->add_user("alice", "a-pw");
  turn::ServerConfig sc;
  sc.policy = policy;
  sc.quota = std::make_shared<turn::UserQuota>();
  StatsPage stats("", 1, "test");
  WorkerConfig wc;
  Endpoint listen{IpAddress::v4(127, 0, 0, 1), free_udp_port()};
  wc.listen = {listen};
  wc.relay_v4 = IpAddress::v4(127, 0, 0, 1);
  wc.relay_port_min = 47000;
  wc.relay_port_max = 47100;
  wc.backend.buffers = 256;
  wc.commands = region->commands(0);
  wc.events = region->events(0);
  wc.doorbell_fd = bell.fd();
  Worker worker(wc, sc, stats);
  ASSERT_TRUE(worker.start(error)) << error;

  EXPECT_EQ(allocate(listen, "alice", "a-pw"), stun::Class::kSuccess);
  EXPECT_EQ(allocate(listen, "bob", "b-pw"), stun::Class::kError);  // not a user yet

  turn::Policy next = *policy;
  next.add_user("bob", "b-pw");
  auto commands = region->commands(0);
  auto events = region->events(0);
  ASSERT_TRUE(push_policy(commands, next, 7));
  bell.ring();
  auto applied = wait_event(events);
  ASSERT_TRUE(applied);
  EXPECT_EQ(applied->type, static_cast<std::uint16_t>(shm::Event::kPolicyApplied));
  EXPECT_EQ(load_be64(applied->payload.data()), 7u);
  events.pop();
  EXPECT_EQ(allocate(listen, "bob", "b-pw"), stun::Class::kSuccess);

  // An unknown command and a commit that does not match its begin are answered, not obeyed.
  std::uint8_t nothing[1] = {0};
  ASSERT_TRUE(commands.push(999, shm::kMessageVersion, nothing));
  ASSERT_TRUE(commands.push(static_cast<std::uint16_t>(shm::Command::kPolicyCommit),
                            shm::kMessageVersion, Bytes(nothing, 1)));
  bell.ring();
  auto refused = wait_event(events);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->type, static_cast<std::uint16_t>(shm::Event::kCommandRefused));
  events.pop();
  auto rejected = wait_event(events);
  ASSERT_TRUE(rejected);
  EXPECT_EQ(rejected->type, static_cast<std::uint16_t>(shm::Event::kPolicyRejected));
  events.pop();
  EXPECT_EQ(allocate(listen, "bob", "b-pw"), stun::Class::kSuccess);  // the applied policy stands
  worker.request_stop();
  worker.join();
}

}  // namespace
}  // namespace ringlane
