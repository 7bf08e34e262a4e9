// std::async (async and deferred launch), std::future and
// std::shared_future, std::promise set from another thread, and
// std::packaged_task run on a std::thread.
#include <cstdio>
#include <future>
#include <numeric>
#include <thread>
#include <vector>

// 64-bit: long is 32 bits on wasm32.
static long long sum_range(long long from, long long to) {
    long long sum = 0;
    for (long long i = from; i < to; i++) sum += i * i % 7;
    return sum;
}

int main() {
    // Split a sum over four async tasks.
    std::vector<std::future<long long>> parts;
    for (long long p = 0; p < 4; p++)
        parts.push_back(std::async(std::launch::async, sum_range, p * 25000, (p + 1) * 25000));
    long long total = 0;
    for (auto &part : parts) total += part.get();
    std::printf("async parts: %lld (serial %lld)\n", total, sum_range(0, 100000));

    // A deferred task runs in the thread that asks for it.
    auto caller = std::this_thread::get_id();
    auto deferred = std::async(std::launch::deferred, [caller] {
        return std::this_thread::get_id() == caller;
    });
    std::printf("deferred ran in the caller: %d\n", deferred.get());

    // A promise fulfilled by another thread; several readers of one
    // shared_future.
    std::promise<std::vector<int>> promise;
    std::shared_future<std::vector<int>> shared = promise.get_future().share();
    std::vector<std::future<int>> readers;
    for (int r = 0; r < 3; r++)
        readers.push_back(std::async(std::launch::async, [shared, r] {
            const auto &v = shared.get();
            return std::accumulate(v.begin(), v.end(), 0) * (r + 1);
        }));
    std::thread producer([&promise] {
        std::vector<int> v(100);
        std::iota(v.begin(), v.end(), 1);
        promise.set_value(std::move(v));
    });
    for (auto &r : readers) std::printf("shared_future reader: %d\n", r.get());
    producer.join();

    // A packaged_task moved into a thread.
    std::packaged_task<std::string(int)> task([](int n) {
        std::string s;
        for (int i = 0; i < n; i++) s += static_cast<char>('a' + i % 26);
        return s;
    });
    std::future<std::string> text = task.get_future();
    std::thread runner(std::move(task), 30);
    std::printf("packaged_task: %s\n", text.get().c_str());
    runner.join();

    // wait_for on a ready future, valid() after get().
    auto ready = std::async(std::launch::async, [] { return 42; });
    ready.wait();
    bool is_ready = ready.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    int value = ready.get();
    std::printf("ready: %d, value %d, valid after get %d\n", is_ready, value, ready.valid());
    return 0;
}
