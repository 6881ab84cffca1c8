#include "ringlane/controlplane/placement/service.hpp"

#include <boost/asio/post.hpp>
#include <future>

namespace ringlane::control::placement {

Service::Service(boost::asio::io_context& io, std::unique_ptr<Store> store)
    : io_(io), store_(std::move(store)) {
  connected_ = store_->connected();
  if (store_->kind() != "memory") {
    store_io_ = std::make_unique<boost::asio::io_context>(1);
    guard_.emplace(store_io_->get_executor());
    thread_ = std::thread([this] { store_io_->run(); });
  }
}

Service::~Service() {
  if (store_io_) {
    guard_.reset();
    store_io_->stop();
    thread_.join();
  }
}

// Runs `work` on the store's thread (or here), then its continuation on the caller's thread.
template <typename Work>
void Service::run(Work&& work) {
  if (!store_io_) {
    work();
    return;
  }
  boost::asio::post(*store_io_, std::forward<Work>(work));
}

void Service::place(std::string room, PlaceDone done) {
  run([this, room = std::move(room), done = std::move(done)]() mutable {
    PlaceError error = PlaceError::kNone;
    auto placed = store_->place(room, error);
    connected_ = store_->connected();
    if (!store_io_) {
      return done(std::move(placed), error);
    }
    boost::asio::post(io_, [done = std::move(done), placed = std::move(placed), error]() mutable {
      done(std::move(placed), error);
    });
  });
}

void Service::heartbeat(NodeInfo self, std::vector<HostedRoom> hosted, HeartbeatDone done) {
  run([this, self = std::move(self), hosted = std::move(hosted), done = std::move(done)]() mutable {
    bool ok = store_->heartbeat(self);
    std::vector<std::string> lost;
    if (ok) {
      lost = store_->keep(self.id, hosted);
    }
    connected_ = store_->connected();
    if (!store_io_) {
      return done(ok, std::move(lost));
    }
    boost::asio::post(io_, [done = std::move(done), ok, lost = std::move(lost)]() mutable {
      done(ok, std::move(lost));
    });
  });
}

void Service::release(std::string room, std::string node_id) {
  run([this, room = std::move(room), node_id = std::move(node_id)] {
    store_->release(room, node_id);
    connected_ = store_->connected();
  });
}

void Service::deregister(std::string node_id, std::vector<HostedRoom> rooms,
                         std::chrono::milliseconds timeout) {
  if (!store_io_) {
    store_->deregister(node_id, rooms);
    return;
  }
  auto done = std::make_shared<std::promise<void>>();
  auto finished = done->get_future();
  boost::asio::post(*store_io_,
                    [this, node_id = std::move(node_id), rooms = std::move(rooms), done] {
                      store_->deregister(node_id, rooms);
                      done->set_value();
                    });
  finished.wait_for(timeout);
}

}  // namespace ringlane::control::placement
