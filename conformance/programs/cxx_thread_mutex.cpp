// std::thread with std::mutex and its relatives: lock_guard, unique_lock,
// scoped_lock over two mutexes, recursive_mutex, timed_mutex, shared_mutex
// readers and writers, thread ids, moved and swapped threads, and a
// thread_local with a constructor and destructor.
#include <cstdio>
#include <mutex>
#include <shared_mutex>
#include <set>
#include <thread>
#include <vector>

static std::mutex a, b;
static long from_a, from_b;

static std::recursive_mutex rec;
static int depth_total;

static void nest(int depth) {
    std::lock_guard<std::recursive_mutex> guard(rec);
    depth_total += depth;
    if (depth > 0) nest(depth - 1);
}

struct Counter {
    int uses = 0;
    ~Counter() {
        std::lock_guard<std::mutex> guard(a);
        from_a += 1000 * uses;
    }
};
static thread_local Counter counter;

int main() {
    // Two mutexes taken together in opposite orders: scoped_lock avoids
    // the deadlock.
    std::vector<std::thread> workers;
    for (int t = 0; t < 4; t++) {
        workers.emplace_back([t] {
            for (int i = 0; i < 500; i++) {
                if (t % 2 == 0) {
                    std::scoped_lock both(a, b);
                    from_a += i;
                    from_b += 2 * i;
                } else {
                    std::scoped_lock both(b, a);
                    from_a += i;
                    from_b += 2 * i;
                }
                counter.uses++;
            }
        });
    }
    for (auto &w : workers) w.join();
    std::printf("scoped_lock: a=%ld b=%ld\n", from_a, from_b);

    // unique_lock: deferred, try_lock, unlock and re-lock.
    {
        std::unique_lock<std::mutex> lock(a, std::defer_lock);
        std::printf("owns before lock: %d\n", lock.owns_lock());
        lock.lock();
        std::thread other([] { std::printf("try_lock in another thread: %d\n", a.try_lock()); });
        other.join();
        lock.unlock();
        std::thread again([] {
            bool got = a.try_lock();
            std::printf("try_lock after unlock: %d\n", got);
            if (got) a.unlock();
        });
        again.join();
    }

    // recursive_mutex from several threads.
    std::thread r1(nest, 5), r2(nest, 3);
    r1.join();
    r2.join();
    std::printf("recursive: %d\n", depth_total);

    // timed_mutex: a bounded try while another thread holds it.
    std::timed_mutex timed;
    timed.lock();
    std::thread waiter([&timed] {
        bool got = timed.try_lock_for(std::chrono::milliseconds(20));
        std::printf("try_lock_for while held: %d\n", got);
    });
    waiter.join();
    timed.unlock();

    // shared_mutex: readers share, writers exclude.
    std::shared_mutex rw;
    long shared_value = 0, reads = 0;
    std::mutex reads_lock;
    std::vector<std::thread> rws;
    for (int t = 0; t < 6; t++) {
        rws.emplace_back([&, t] {
            for (int i = 0; i < 200; i++) {
                if (t < 2) {
                    std::unique_lock<std::shared_mutex> w(rw);
                    shared_value += 3;
                } else {
                    std::shared_lock<std::shared_mutex> r(rw);
                    long seen = shared_value;
                    std::lock_guard<std::mutex> g(reads_lock);
                    reads += seen % 3 == 0;
                }
            }
        });
    }
    for (auto &t : rws) t.join();
    std::printf("shared_mutex: value=%ld multiples-of-3 reads=%ld\n", shared_value, reads);

    // Thread ids: distinct while running, not joinable after join, moved
    // and swapped threads.
    std::mutex ids_lock;
    std::set<std::thread::id> ids;
    std::vector<std::thread> group;
    for (int i = 0; i < 5; i++)
        group.emplace_back([&] {
            std::lock_guard<std::mutex> g(ids_lock);
            ids.insert(std::this_thread::get_id());
        });
    std::thread moved = std::move(group.back());
    group.pop_back();
    std::swap(group.front(), moved);
    for (auto &t : group) t.join();
    moved.join();
    std::printf("distinct ids: %zu, main among them: %d, joinable after join: %d\n", ids.size(),
                ids.count(std::this_thread::get_id()) == 1, moved.joinable());
    std::printf("thread_local destructors ran: a=%ld\n", from_a);
    return 0;
}
