// The C++ library from threads: each worker builds strings, vectors and
// maps from its own random engine (the engines' sequences are fixed by
// the standard; distributions are not, so none is used), then main merges
// and prints them with iostreams. Also new[]/delete[], shared_ptr copies
// across threads, std::sort, unordered_map, std::function, and a
// function-local static first reached by several threads at once.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

constexpr int THREADS = 4;

struct Table {
    std::map<std::string, int> counts;
    Table() {
        for (const char *w : {"alpha", "beta", "gamma"}) counts[w] = static_cast<int>(std::string(w).size());
    }
};

static const Table &table() {
    static Table t; // initialised once, whichever thread comes first
    return t;
}

struct Result {
    std::map<std::string, int> words;
    std::vector<std::uint32_t> sorted;
    std::string text;
    long table_sum = 0;
};

static Result work(int t, std::shared_ptr<const std::vector<int>> weights) {
    Result r;
    std::mt19937 engine(1000 + t);
    std::minstd_rand small(77 + t);
    std::mt19937_64 wide(5 + t);
    static const char *syllables[] = {"ka", "lo", "mi", "ne", "su", "to"};
    for (int i = 0; i < 300; i++) {
        std::string word;
        int length = 1 + static_cast<int>(engine() % 3);
        for (int s = 0; s < length; s++) word += syllables[small() % 6];
        r.words[word] += (*weights)[i % weights->size()];
    }
    r.sorted.resize(200);
    for (auto &v : r.sorted) v = static_cast<std::uint32_t>(wide() >> 40);
    std::sort(r.sorted.begin(), r.sorted.end());
    std::ostringstream out;
    out << "t" << t << ":" << std::hex << engine() << std::dec << ":" << std::setw(6)
        << std::setfill('0') << small() % 1000000;
    r.text = out.str();
    for (const auto &[k, v] : table().counts) r.table_sum += v * (t + 1);
    return r;
}

int main() {
    auto weights = std::make_shared<const std::vector<int>>(std::vector<int>{1, 2, 3, 5, 8});
    std::vector<Result> results(THREADS);
    std::vector<std::thread> threads;
    for (int t = 0; t < THREADS; t++)
        threads.emplace_back([&results, t, weights] { results[t] = work(t, weights); });
    for (auto &th : threads) th.join();
    std::cout << "shared_ptr owners after join: " << weights.use_count() << "\n";

    std::map<std::string, int> merged;
    std::unordered_map<std::string, int> seen_in;
    for (const auto &r : results) {
        for (const auto &[word, n] : r.words) {
            merged[word] += n;
            seen_in[word]++;
        }
        std::cout << r.text << " smallest " << r.sorted.front() << " largest " << r.sorted.back()
                  << " sorted " << std::is_sorted(r.sorted.begin(), r.sorted.end()) << " table "
                  << r.table_sum << "\n";
    }
    std::cout << merged.size() << " words\n";
    int shown = 0;
    for (const auto &[word, n] : merged) {
        if (shown++ % 9 == 0) std::cout << std::left << std::setw(8) << word << n << " in " << seen_in[word] << "\n";
    }

    // new[]/delete[] from threads, results through std::function.
    std::vector<std::function<double()>> jobs;
    for (int t = 0; t < THREADS; t++)
        jobs.emplace_back([t] {
            double *buffer = new double[1000 * (t + 1)];
            for (int i = 0; i < 1000 * (t + 1); i++) buffer[i] = i * 0.5;
            double sum = 0;
            for (int i = 0; i < 1000 * (t + 1); i++) sum += buffer[i];
            delete[] buffer;
            return sum;
        });
    std::vector<double> sums(THREADS);
    threads.clear();
    for (int t = 0; t < THREADS; t++) threads.emplace_back([&, t] { sums[t] = jobs[t](); });
    for (auto &th : threads) th.join();
    std::cout << std::fixed << std::setprecision(2);
    for (double s : sums) std::cout << s << " ";
    std::cout << "\n";

    // seed_seq and the standard engines' fixed 10000th values.
    std::seed_seq seq{1, 2, 3};
    std::uint32_t seeds[3];
    seq.generate(seeds, seeds + 3);
    std::mt19937 mt;
    mt.discard(9999);
    std::minstd_rand0 m0;
    m0.discard(9999);
    std::cout << "seed_seq " << seeds[0] << " " << seeds[1] << " " << seeds[2] << ", mt19937 " << mt()
              << ", minstd_rand0 " << m0() << std::endl;
    return 0;
}
