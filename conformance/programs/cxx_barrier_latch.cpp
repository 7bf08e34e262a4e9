// C++20 coordination types: std::barrier with a completion function over
// several phases, std::latch (count_down, arrive_and_wait, wait),
// std::counting_semaphore bounding concurrency, std::binary_semaphore as
// a signal, and barrier::arrive_and_drop.
#include <barrier>
#include <cstdio>
#include <latch>
#include <mutex>
#include <semaphore>
#include <thread>
#include <vector>

constexpr int THREADS = 4, PHASES = 6;

int main() {
    // Each phase every thread adds to its own slot; the completion
    // function, run once per phase, folds the slots.
    long slots[THREADS] = {};
    long folded[PHASES] = {};
    int phase = 0;
    auto on_completion = [&]() noexcept {
        long sum = 0;
        for (long s : slots) sum += s;
        folded[phase++] = sum;
    };
    std::barrier sync(THREADS, on_completion);
    std::vector<std::thread> threads;
    for (int t = 0; t < THREADS; t++)
        threads.emplace_back([&, t] {
            for (int p = 0; p < PHASES; p++) {
                slots[t] += (t + 1) * (p + 1);
                sync.arrive_and_wait();
            }
        });
    for (auto &t : threads) t.join();
    std::printf("barrier phases:");
    for (long f : folded) std::printf(" %ld", f);
    std::printf("\n");

    // A latch as a start gate and one as a finish line.
    std::latch start(1), done(THREADS);
    int results[THREADS] = {};
    threads.clear();
    for (int t = 0; t < THREADS; t++)
        threads.emplace_back([&, t] {
            start.wait();
            results[t] = t * 10;
            done.count_down();
        });
    start.count_down();
    done.wait();
    std::printf("latch results: %d %d %d %d, try_wait %d\n", results[0], results[1], results[2],
                results[3], done.try_wait());
    for (auto &t : threads) t.join();

    // arrive_and_wait on a latch shared by every thread.
    std::latch meet(THREADS);
    int arrived[THREADS] = {};
    threads.clear();
    for (int t = 0; t < THREADS; t++)
        threads.emplace_back([&, t] {
            arrived[t] = 1;
            meet.arrive_and_wait();
        });
    for (auto &t : threads) t.join();
    std::printf("latch meet: %d\n", arrived[0] + arrived[1] + arrived[2] + arrived[3]);

    // At most two threads inside at once.
    std::counting_semaphore<2> slots_free(2);
    std::mutex watch;
    int inside = 0, most = 0;
    threads.clear();
    for (int t = 0; t < 6; t++)
        threads.emplace_back([&] {
            for (int i = 0; i < 20; i++) {
                slots_free.acquire();
                {
                    std::lock_guard<std::mutex> g(watch);
                    inside++;
                    if (inside > most) most = inside;
                }
                std::this_thread::yield();
                {
                    std::lock_guard<std::mutex> g(watch);
                    inside--;
                }
                slots_free.release();
            }
        });
    for (auto &t : threads) t.join();
    std::printf("semaphore: never more than 2 inside: %d\n", most <= 2);

    // A binary semaphore as a one-shot signal.
    std::binary_semaphore signal(0);
    int message = 0;
    std::thread sender([&] {
        message = 7;
        signal.release();
    });
    signal.acquire();
    std::printf("binary_semaphore message: %d\n", message);
    sender.join();

    // A thread that leaves a barrier early.
    std::barrier<> shrinking(3);
    int rounds = 0;
    std::thread leaver([&] { shrinking.arrive_and_drop(); });
    std::thread stayer([&] {
        for (int i = 0; i < 3; i++) shrinking.arrive_and_wait();
    });
    for (int i = 0; i < 3; i++) {
        shrinking.arrive_and_wait();
        rounds++;
    }
    leaver.join();
    stayer.join();
    std::printf("barrier after arrive_and_drop: %d rounds\n", rounds);
    return 0;
}
