// The replay demultiplexer: holds the recorded order of events (one thread
// number per event) and lets each replaying thread through only when the next
// recorded event is its own. Waiting happens with the GIL released so the
// thread whose turn it is can run.
//
// A boundary call takes its event in one step (claim). A synchronization point
// holds its turn while it performs the real operation (turn ... advance), so
// that no other thread's event can slip in between the turn and the operation.
//
// The baton: while recording, the thread that just made a call usually keeps the
// GIL until it blocks again, i.e. until its next call. Replay gives it the same:
// the next event goes to another thread only once the thread that took the last
// one is back (waiting for a turn, or parked: ended, joining), or after a short
// grace period, for a thread blocked where nothing is recorded.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "parts.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace py = pybind11;

namespace {

constexpr std::int64_t kTimedOut = -1;
constexpr std::int64_t kExhausted = -2;
constexpr std::int64_t kAborted = -3;

using Clock = std::chrono::steady_clock;

class Demux {
  public:
    Demux(std::vector<int> order, double grace_s)
        : order_(std::move(order)),
          grace_(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(grace_s))) {}

    std::int64_t claim(int tid, double timeout_s) { return wait_for_turn(tid, timeout_s, true); }

    std::int64_t turn(int tid, double timeout_s) { return wait_for_turn(tid, timeout_s, false); }

    void advance() {
        std::lock_guard<std::mutex> lock(mutex_);
        if (pos_ < order_.size()) step();
    }

    // `tid` will not run program code for a while (it ended, or waits for another thread).
    void park(int tid) {
        std::lock_guard<std::mutex> lock(mutex_);
        come_back(tid);
    }

    void abort() {
        std::lock_guard<std::mutex> lock(mutex_);
        aborted_ = true;
        for (auto& entry : waiters_) entry.second.cv.notify_all();
    }

    std::size_t position() {
        std::lock_guard<std::mutex> lock(mutex_);
        return pos_;
    }

    int expected() {
        std::lock_guard<std::mutex> lock(mutex_);
        return pos_ < order_.size() ? order_[pos_] : -1;
    }

    std::size_t size() const { return order_.size(); }

  private:
    // The index whose turn `tid` may take, or a negative status; mutex_ held.
    std::int64_t ready(int tid) const {
        if (aborted_) return kAborted;
        if (pos_ >= order_.size()) return kExhausted;
        if (order_[pos_] != tid) return kTimedOut;
        if (runner_ != -1 && runner_ != tid && Clock::now() < handed_out_ + grace_) return kTimedOut;
        return static_cast<std::int64_t>(pos_);
    }

    // Wake the thread the next event belongs to, and only it: one condition variable per thread.
    void wake_next() {
        if (pos_ < order_.size()) {
            auto it = waiters_.find(order_[pos_]);
            if (it != waiters_.end() && it->second.count > 0) it->second.cv.notify_all();
        }
    }

    void come_back(int tid) {
        if (runner_ == tid) {
            runner_ = -1;
            wake_next();
        }
    }

    // Hand out the current event to `tid`, which runs from now on.
    void take(int tid) {
        runner_ = tid;
        handed_out_ = Clock::now();
    }

    void step() {
        ++pos_;
        wake_next();
    }

    std::int64_t wait_for_turn(int tid, double timeout_s, bool advance) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            std::int64_t result = ready(tid);
            if (result != kTimedOut) {
                if (result >= 0) {
                    take(tid);
                    if (advance) step();
                }
                return result;
            }
        }
        // Let go of the GIL before handing the baton on, so the thread woken finds it free.
        py::gil_scoped_release release;
        std::unique_lock<std::mutex> lock(mutex_);
        come_back(tid);
        const auto patience = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s));
        auto deadline = Clock::now() + patience;
        std::size_t seen = pos_;
        Waiters& mine = waiters_[tid];  // node-based map: the reference stays valid
        ++mine.count;
        std::int64_t result;
        // Time runs out only when nothing anywhere made progress for `timeout` seconds.
        while ((result = ready(tid)) == kTimedOut) {
            // Only the baton holds this thread back: look again when its grace period ends.
            bool baton = pos_ < order_.size() && order_[pos_] == tid && !aborted_;
            auto until = baton ? std::min(deadline, handed_out_ + grace_) : deadline;
            if (mine.cv.wait_until(lock, until) == std::cv_status::timeout && Clock::now() >= deadline) {
                if (pos_ == seen) {
                    result = ready(tid);
                    break;
                }
                seen = pos_;
                deadline = Clock::now() + patience;
            }
        }
        --mine.count;
        if (result >= 0) {
            take(tid);
            if (advance) step();
        }
        return result;
    }

    std::vector<int> order_;
    std::size_t pos_ = 0;
    struct Waiters {
        int count = 0;
        std::condition_variable cv;
    };
    std::unordered_map<int, Waiters> waiters_;
    Clock::duration grace_;
    int runner_ = -1;  // the thread that took the last event and has not come back since
    Clock::time_point handed_out_;
    bool aborted_ = false;
    std::mutex mutex_;
};

}  // namespace

PYBIND11_MODULE(_native, m) {
    m.doc() = "Native core of pytest-retrace: the replay demultiplexer and the stand-ins of boundaries.";
    if (add_transparent(m.ptr()) < 0 || add_mainframe(m.ptr()) < 0 || add_events(m.ptr()) < 0) throw py::error_already_set();
    m.attr("TIMED_OUT") = kTimedOut;
    m.attr("EXHAUSTED") = kExhausted;
    m.attr("ABORTED") = kAborted;
    py::class_<Demux>(m, "Demux", "Hands recorded events to replaying threads in the recorded order.")
        .def(py::init<std::vector<int>, double>(), py::arg("order"), py::arg("grace") = 0.05,
             "order: the thread number of every recorded event, in recorded order; grace: how long\n"
             "(seconds) the next thread waits for the one that took the last event to come back.")
        .def("claim", &Demux::claim, py::arg("tid"), py::arg("timeout"),
             "Wait (GIL released) until the next event belongs to `tid`, take it and return its index;\n"
             "TIMED_OUT when no event was handed out to anyone for `timeout` seconds, EXHAUSTED when\n"
             "no events remain, ABORTED after abort().")
        .def("turn", &Demux::turn, py::arg("tid"), py::arg("timeout"),
             "Like claim, but hold the turn: no other thread gets an event until advance().")
        .def("advance", &Demux::advance, "End the turn taken with turn(): hand out the next event.")
        .def("park", &Demux::park, py::arg("tid"),
             "`tid` runs no program code for a while (ended, joining): the next thread need not wait for it.")
        .def("abort", &Demux::abort, "Wake every waiting thread with ABORTED (used when a replay diverges).")
        .def_property_readonly("position", &Demux::position, "Index of the next event to hand out.")
        .def("expected", &Demux::expected, "Thread number the next event belongs to, or -1 when none remain.")
        .def("__len__", &Demux::size);
}
