// The kernel floor for the relay benchmark: the least a UDP relay can do. Blocking recvmmsg
// of ChannelData frames, strip the 4-byte header, sendmmsg the payload to one fixed peer.
// No lookups, no checks, no timers.   kernel_floor LISTEN_PORT PEER_PORT [IP]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: kernel_floor LISTEN_PORT PEER_PORT [IP]\n");
    return 2;
  }
  const char* ip = argc > 3 ? argv[3] : "127.0.0.1";
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int big = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
  sockaddr_in me{};
  me.sin_family = AF_INET;
  me.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
  inet_pton(AF_INET, ip, &me.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&me), sizeof(me)) != 0) {
    std::perror("bind");
    return 1;
  }
  sockaddr_in peer = me;
  peer.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[2])));
  constexpr int kBatch = 32;
  std::vector<unsigned char> bufs(kBatch * 2048);
  mmsghdr in[kBatch];
  mmsghdr out[kBatch];
  iovec iin[kBatch];
  iovec iout[kBatch];
  for (;;) {
    for (int i = 0; i < kBatch; ++i) {
      iin[i] = {bufs.data() + i * 2048, 2048};
      in[i].msg_hdr = msghdr{};
      in[i].msg_hdr.msg_iov = &iin[i];
      in[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(fd, in, kBatch, MSG_WAITFORONE, nullptr);
    if (n <= 0)
      continue;
    int k = 0;
    for (int i = 0; i < n; ++i) {
      if (in[i].msg_len < 4)
        continue;
      iout[k] = {bufs.data() + i * 2048 + 4, in[i].msg_len - 4};
      out[k].msg_hdr = msghdr{};
      out[k].msg_hdr.msg_name = &peer;
      out[k].msg_hdr.msg_namelen = sizeof(peer);
      out[k].msg_hdr.msg_iov = &iout[k];
      out[k].msg_hdr.msg_iovlen = 1;
      ++k;
    }
    if (k > 0)
      sendmmsg(fd, out, static_cast<unsigned>(k), 0);
  }
}
