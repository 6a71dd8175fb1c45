// The replay demultiplexer: holds the recorded order of events (one logical
// thread id per event) and lets each replaying thread through only when the
// next recorded event is its own. Waiting happens with the GIL released so the
// thread whose turn it is can run.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

namespace py = pybind11;

namespace {

constexpr std::int64_t kTimedOut = -1;
constexpr std::int64_t kExhausted = -2;
constexpr std::int64_t kAborted = -3;

class Demux {
  public:
    explicit Demux(std::vector<int> order) : order_(std::move(order)) {}

    std::int64_t claim(int tid, double timeout_s) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            std::int64_t ready = take_if_turn(tid);
            if (ready != kTimedOut) return ready;
        }
        py::gil_scoped_release release;
        std::unique_lock<std::mutex> lock(mutex_);
        auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(timeout_s));
        ++waiters_;
        std::int64_t result = kTimedOut;
        while ((result = take_if_turn(tid)) == kTimedOut) {
            if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
                result = take_if_turn(tid);
                break;
            }
        }
        --waiters_;
        return result;
    }

    void abort() {
        std::lock_guard<std::mutex> lock(mutex_);
        aborted_ = true;
        cv_.notify_all();
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
    // Called with mutex_ held: the index claimed, or a negative status.
    std::int64_t take_if_turn(int tid) {
        if (aborted_) return kAborted;
        if (pos_ >= order_.size()) return kExhausted;
        if (order_[pos_] != tid) return kTimedOut;
        std::int64_t index = static_cast<std::int64_t>(pos_++);
        if (waiters_ > 0) cv_.notify_all();
        return index;
    }

    std::vector<int> order_;
    std::size_t pos_ = 0;
    int waiters_ = 0;
    bool aborted_ = false;
    std::mutex mutex_;
    std::condition_variable cv_;
};

}  // namespace

PYBIND11_MODULE(_native, m) {
    m.doc() = "Native core of pytest-retrace: the replay demultiplexer.";
    m.attr("TIMED_OUT") = kTimedOut;
    m.attr("EXHAUSTED") = kExhausted;
    m.attr("ABORTED") = kAborted;
    py::class_<Demux>(m, "Demux", "Hands recorded events to replaying threads in the recorded order.")
        .def(py::init<std::vector<int>>(), py::arg("order"),
             "order: the logical thread id of every recorded event, in recorded order.")
        .def("claim", &Demux::claim, py::arg("tid"), py::arg("timeout"),
             "Wait (GIL released) until the next event belongs to `tid`, take it and return its index;\n"
             "TIMED_OUT when no turn came within `timeout` seconds, EXHAUSTED when no events remain,\n"
             "ABORTED after abort().")
        .def("abort", &Demux::abort, "Wake every waiting thread with ABORTED (used when a replay diverges).")
        .def_property_readonly("position", &Demux::position, "Index of the next event to hand out.")
        .def("expected", &Demux::expected, "Thread id the next event belongs to, or -1 when none remain.")
        .def("__len__", &Demux::size);
}
