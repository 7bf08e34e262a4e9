// std::atomic: counters of several widths, compare-exchange loops, an
// atomic_flag spin lock guarding plain data, release/acquire message
// passing, atomic_ref on plain memory, and C++20 wait/notify.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

constexpr int THREADS = 4, ROUNDS = 20000;

std::atomic<int> count32{0};
std::atomic<std::int64_t> count64{0};
std::atomic<unsigned char> count8{0};
std::atomic<long> maximum{0};
std::atomic_flag spin = ATOMIC_FLAG_INIT;
long guarded;

int main() {
    std::vector<std::thread> threads;
    for (int t = 0; t < THREADS; t++)
        threads.emplace_back([t] {
            for (int i = 0; i < ROUNDS; i++) {
                count32.fetch_add(1, std::memory_order_relaxed);
                count64 += 3;
                count8++;
                long mine = static_cast<long>(t) * ROUNDS + i, seen = maximum.load();
                while (seen < mine && !maximum.compare_exchange_weak(seen, mine)) {
                }
                if (i % 10 == 0) {
                    while (spin.test_and_set(std::memory_order_acquire)) {
                    }
                    guarded += t + 1;
                    spin.clear(std::memory_order_release);
                }
            }
        });
    for (auto &t : threads) t.join();
    std::printf("count32 %d count64 %lld count8 %d max %ld guarded %ld\n", count32.load(),
                static_cast<long long>(count64.load()), count8.load(), maximum.load(), guarded);

    // Release/acquire: the data written before the flag is seen after it.
    int data[16] = {};
    std::atomic<bool> ready{false};
    std::thread writer([&] {
        for (int i = 0; i < 16; i++) data[i] = i * i;
        ready.store(true, std::memory_order_release);
    });
    while (!ready.load(std::memory_order_acquire)) std::this_thread::yield();
    int total = 0;
    for (int v : data) total += v;
    writer.join();
    std::printf("message passing: %d\n", total);

    // atomic_ref on a plain array.
    long plain[4] = {};
    std::vector<std::thread> refs;
    for (int t = 0; t < THREADS; t++)
        refs.emplace_back([&plain, t] {
            for (int i = 0; i < 1000; i++) std::atomic_ref<long>(plain[(t + i) % 4]).fetch_add(i);
        });
    for (auto &t : refs) t.join();
    std::printf("atomic_ref: %ld %ld %ld %ld\n", plain[0], plain[1], plain[2], plain[3]);

    // wait/notify: each thread waits for its turn on one atomic.
    std::atomic<int> turn{0};
    std::vector<int> order;
    std::vector<std::thread> turns;
    for (int t = THREADS - 1; t >= 0; t--)
        turns.emplace_back([&, t] {
            for (int seen = turn.load(); seen != t; seen = turn.load()) turn.wait(seen);
            order.push_back(t);
            turn.store(t + 1);
            turn.notify_all();
        });
    for (auto &t : turns) t.join();
    std::printf("wait/notify order:");
    for (int t : order) std::printf(" %d", t);
    std::printf("\nlock-free int: %d\n", std::atomic<int>::is_always_lock_free);
    return 0;
}
