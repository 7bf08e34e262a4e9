// std::condition_variable: a bounded queue between producers and
// consumers (wait with a predicate, notify_one, notify_all at the end), a
// wait_for that times out, and condition_variable_any over a
// unique_lock of a std::mutex.
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

constexpr int PRODUCERS = 3, CONSUMERS = 3, ITEMS = 2000;
constexpr std::size_t CAPACITY = 8;

std::mutex lock;
std::condition_variable not_full, not_empty;
std::deque<int> queue;
int producers_left = PRODUCERS;

int main() {
    std::vector<long> sums(CONSUMERS), counts(CONSUMERS);
    std::vector<std::thread> threads;
    for (int p = 0; p < PRODUCERS; p++)
        threads.emplace_back([p] {
            for (int i = 1; i <= ITEMS; i++) {
                std::unique_lock<std::mutex> guard(lock);
                not_full.wait(guard, [] { return queue.size() < CAPACITY; });
                queue.push_back(p * ITEMS + i);
                not_empty.notify_one();
            }
            std::lock_guard<std::mutex> guard(lock);
            if (--producers_left == 0) not_empty.notify_all();
        });
    for (int c = 0; c < CONSUMERS; c++)
        threads.emplace_back([c, &sums, &counts] {
            for (;;) {
                std::unique_lock<std::mutex> guard(lock);
                not_empty.wait(guard, [] { return !queue.empty() || producers_left == 0; });
                if (queue.empty()) return;
                sums[c] += queue.front();
                counts[c]++;
                queue.pop_front();
                not_full.notify_one();
            }
        });
    for (auto &t : threads) t.join();
    long sum = 0, count = 0;
    for (int c = 0; c < CONSUMERS; c++) {
        sum += sums[c];
        count += counts[c];
    }
    long n = PRODUCERS * ITEMS;
    std::printf("items %ld sum %ld expected %ld\n", count, sum, n * (n + 1) / 2);

    // Nobody notifies: wait_for returns timeout.
    {
        std::unique_lock<std::mutex> guard(lock);
        auto status = not_full.wait_for(guard, std::chrono::milliseconds(10));
        std::printf("wait_for without notify: %s\n",
                    status == std::cv_status::timeout ? "timeout" : "no_timeout");
    }

    // A round trip through condition_variable_any: ping-pong 100 times.
    std::condition_variable_any any;
    int turn = 0;
    std::thread pong([&] {
        for (int i = 0; i < 100; i++) {
            std::unique_lock<std::mutex> guard(lock);
            any.wait(guard, [&] { return turn % 2 == 1; });
            turn++;
            any.notify_all();
        }
    });
    for (int i = 0; i < 100; i++) {
        std::unique_lock<std::mutex> guard(lock);
        any.wait(guard, [&] { return turn % 2 == 0; });
        turn++;
        any.notify_all();
    }
    pong.join();
    std::printf("ping-pong turns %d\n", turn);
    return 0;
}
