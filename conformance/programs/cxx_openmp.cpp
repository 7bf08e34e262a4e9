// OpenMP in C++: parallel for over std::vector, reductions, a critical
// section around a std::map, tasks that build std::strings, and a
// class member function called from a parallel region.
#include <omp.h>

#include <cstdio>
#include <map>
#include <numeric>
#include <string>
#include <vector>

class Grid {
  public:
    explicit Grid(int n) : n_(n), cells_(static_cast<std::size_t>(n) * n) {}
    void fill() {
#pragma omp parallel for schedule(static)
        for (int i = 0; i < n_; i++)
            for (int j = 0; j < n_; j++) at(i, j) = (i * 31 + j * 17) % 101;
    }
    long trace_sum() const {
        long sum = 0;
#pragma omp parallel for reduction(+ : sum)
        for (int i = 0; i < n_; i++) sum += at(i, i);
        return sum;
    }
    double mean() const {
        double total = 0;
#pragma omp parallel for reduction(+ : total) schedule(dynamic, 7)
        for (std::size_t k = 0; k < cells_.size(); k++) total += cells_[k];
        return total / static_cast<double>(cells_.size());
    }

  private:
    int &at(int i, int j) { return cells_[static_cast<std::size_t>(i) * n_ + j]; }
    int at(int i, int j) const { return cells_[static_cast<std::size_t>(i) * n_ + j]; }
    int n_;
    std::vector<int> cells_;
};

int main() {
    omp_set_num_threads(4);
    Grid grid(300);
    grid.fill();
    std::printf("trace %ld mean %.4f\n", grid.trace_sum(), grid.mean());

    std::vector<long> squares(1000);
#pragma omp parallel for
    for (int i = 0; i < 1000; i++) squares[i] = static_cast<long>(i) * i;
    std::printf("sum of squares %ld\n", std::accumulate(squares.begin(), squares.end(), 0L));

    std::map<int, int> histogram;
#pragma omp parallel for
    for (int i = 0; i < 2000; i++) {
        int bucket = (i * 7919) % 10;
#pragma omp critical
        histogram[bucket]++;
    }
    std::printf("histogram:");
    for (const auto &[bucket, n] : histogram) std::printf(" %d:%d", bucket, n);
    std::printf("\n");

    std::vector<std::string> pieces(8);
#pragma omp parallel
#pragma omp single
    for (int t = 0; t < 8; t++) {
#pragma omp task firstprivate(t) shared(pieces)
        pieces[t] = std::string(t + 1, static_cast<char>('a' + t));
    }
    std::string joined;
    for (const auto &p : pieces) joined += p + "|";
    std::printf("tasks: %s\n", joined.c_str());

    int team = 0;
    long max_seen = 0;
#pragma omp parallel reduction(max : max_seen)
    {
#pragma omp single
        team = omp_get_num_threads();
        max_seen = omp_get_thread_num();
    }
    std::printf("team %d, highest thread number %ld\n", team, max_seen);
    return 0;
}
