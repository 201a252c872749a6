// The cache stage: recent answers keyed by a hash of the model's input row. A large
// cache is split into one shard per thread stripe: a thread stores the answers it sees
// in its own shard, so on the healthy path (every answer is offered to the cache)
// threads share neither a lock nor a cache line; a lookup, on the fallback path, reads
// every shard and takes the freshest answer. Storing never waits for a lock.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "ember/fallback.hpp"
#include "core/striped.hpp"
#include "fallback/stage_outputs.hpp"

namespace ember {
namespace {

std::uint64_t mix(std::uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

// A hash of a feature row: four independent lanes over 32-byte blocks (so the CPU works
// on them in parallel), mixed at the end. Fast and good enough for a cache key:
// collisions are caught by comparing the stored row.
std::uint64_t hash_bytes(const void* data, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ULL;
  std::uint64_t lanes[4] = {n, kMul, ~n, kMul ^ n};
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) {
      std::uint64_t w = 0;
      std::memcpy(&w, p + i + 8 * static_cast<std::size_t>(k), 8);
      lanes[k] = (lanes[k] ^ w) * kMul;
      lanes[k] ^= lanes[k] >> 31;
    }
  }
  std::uint64_t tail = 0;
  for (std::size_t j = 0; i < n; ++i, ++j) tail ^= static_cast<std::uint64_t>(p[i]) << ((j % 8) * 8);
  return mix(lanes[0] ^ mix(lanes[1] ^ mix(lanes[2] ^ mix(lanes[3] ^ tail))));
}

constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();

// What every shard stores per row: the key, then each output's row, in this layout.
struct Layout {
  std::vector<OutputSpec> specs;
  std::vector<std::size_t> row_bytes;
  std::size_t key_bytes = 0;
  std::size_t slot_bytes = 0;
};

// One shard: an LRU list over slots in one arena, and an index from hash to slot.
class Shard {
 public:
  std::mutex mutex;

  void init(std::size_t capacity, std::size_t slot_bytes) {
    capacity_ = capacity;
    slot_bytes_ = slot_bytes;
  }

  // The slot that holds `key`, fresh at `now`, or kNone.
  std::uint32_t find(const std::byte* key, std::size_t key_bytes, std::uint64_t h, std::chrono::nanoseconds now,
                     std::chrono::nanoseconds ttl) const {
    const auto it = index_.find(h);
    if (it == index_.end() || std::memcmp(arena(it->second), key, key_bytes) != 0 ||
        now - slots_[it->second].stored_at > ttl) {
      return kNone;
    }
    return it->second;
  }

  // A slot for hash `h`: its own, a new one, or the least recently used one. Throws
  // std::bad_alloc and then leaves the shard as it was.
  std::uint32_t claim(std::uint64_t h) {
    if (auto it = index_.find(h); it != index_.end()) return it->second;  // the same row again, or a collision
    if (used_ < capacity_) {
      if (used_ == slots_.size()) grow();
      const auto slot = static_cast<std::uint32_t>(used_);
      index_.emplace(h, slot);  // the one step that may throw, before anything changes
      ++used_;
      slots_[slot].hash = h;
      link_front(slot);
      return slot;
    }
    const std::uint32_t slot = tail_;  // evict, reusing the index node (no allocation)
    auto node = index_.extract(slots_[slot].hash);
    node.key() = h;
    index_.insert(std::move(node));
    slots_[slot].hash = h;
    return slot;
  }

  void stamp(std::uint32_t slot, std::chrono::nanoseconds now) { slots_[slot].stored_at = now; }
  std::chrono::nanoseconds stored_at(std::uint32_t slot) const { return slots_[slot].stored_at; }
  std::byte* arena(std::uint32_t slot) const {
    return const_cast<std::byte*>(arena_.data()) + static_cast<std::size_t>(slot) * slot_bytes_;
  }
  void touch(std::uint32_t i) {
    if (head_ == i) return;
    unlink(i);
    link_front(i);
  }

 private:
  struct Slot {
    std::uint64_t hash = 0;
    std::chrono::nanoseconds stored_at{0};
    std::uint32_t prev = kNone, next = kNone;  // recency list, head = most recent
  };

  // Room for twice as many rows (up to the capacity): memory is taken as the cache
  // fills. Transactional: the new arena and slots are allocated before either replaces
  // the old, so a failed allocation leaves the shard as it was.
  void grow() {
    const std::size_t n = std::min(capacity_, std::max<std::size_t>(64, 2 * slots_.size()));
    index_.reserve(n);
    std::vector<std::byte> arena(n * slot_bytes_);
    std::vector<Slot> slots(n);
    std::copy(arena_.begin(), arena_.end(), arena.begin());
    std::copy(slots_.begin(), slots_.end(), slots.begin());
    arena_.swap(arena);  // noexcept from here on
    slots_.swap(slots);
  }
  void unlink(std::uint32_t i) {
    Slot& s = slots_[i];
    if (s.prev != kNone) slots_[s.prev].next = s.next; else if (head_ == i) head_ = s.next;
    if (s.next != kNone) slots_[s.next].prev = s.prev; else if (tail_ == i) tail_ = s.prev;
    s.prev = s.next = kNone;
  }
  void link_front(std::uint32_t i) {
    Slot& s = slots_[i];
    s.prev = kNone;
    s.next = head_;
    if (head_ != kNone) slots_[head_].prev = i;
    head_ = i;
    if (tail_ == kNone) tail_ = i;
  }

  std::size_t capacity_ = 0, slot_bytes_ = 0, used_ = 0;
  std::vector<Slot> slots_;
  std::vector<std::byte> arena_;
  std::unordered_map<std::uint64_t, std::uint32_t> index_;
  std::uint32_t head_ = kNone, tail_ = kNone;
};

class CacheStage final : public detail::WritingStage {
 public:
  CacheStage(CacheOptions options, std::shared_ptr<const Clock> clock)
      // A small cache keeps one shard, so that its LRU order is exact.
      : options_(options), clock_(std::move(clock)), shards_(options.capacity >= 2048 ? detail::kStripes : 1) {}

  Status run_into(const Tensor& features, NamedTensors& out) const override {
    if (features.dim() != 2 || features.dtype() != DType::kFloat64 || !features.device().is_cpu()) {
      return invalid_argument("cache takes a float64 matrix, got " + features.describe());
    }
    const Layout* layout = layout_ready_.load(std::memory_order_acquire) ? &layout_ : nullptr;
    const auto rows = static_cast<std::size_t>(features.size(0));
    const std::size_t key_bytes = static_cast<std::size_t>(features.size(1)) * sizeof(double);
    if (layout == nullptr || key_bytes != layout->key_bytes) return not_found("cache: nothing cached for rows like these");
    // The answer's tensors first, so that rows are copied straight from the shards.
    EMBER_RETURN_IF_ERROR(detail::writable_outputs(out, layout->specs, features.size(0)));
    const auto now = clock_->coarse_now();
    const auto* base = static_cast<const std::byte*>(features.data());
    std::size_t missing = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      const std::byte* key = base + r * key_bytes;
      const std::uint64_t h = hash_bytes(key, key_bytes);
      // Threads may each hold the row: the freshest answer wins.
      bool found = false;
      std::chrono::nanoseconds best{0};
      for (Shard& shard : shards_) {
        std::lock_guard<std::mutex> lock(shard.mutex);
        const std::uint32_t slot = shard.find(key, key_bytes, h, now, options_.time_to_live);
        if (slot == kNone || (found && shard.stored_at(slot) <= best)) continue;
        found = true;
        best = shard.stored_at(slot);
        const std::byte* src = shard.arena(slot) + key_bytes;
        for (std::size_t k = 0; k < layout->specs.size(); ++k) {
          const std::size_t n = layout->row_bytes[k];
          std::memcpy(static_cast<std::byte*>(out[k].tensor.data()) + r * n, src, n);
          src += n;
        }
        shard.touch(slot);
      }
      if (!found) ++missing;
    }
    if (missing > 0) {
      return not_found("cache: " + std::to_string(missing) + " of " + std::to_string(rows) +
                       " rows have no fresh answer");
    }
    return {};
  }

  // Stores the answer's rows; a row whose shard is busy is not stored (best effort).
  void observe(const Tensor& features, const NamedTensors& outputs) const override {
    if (features.dim() != 2 || features.dtype() != DType::kFloat64 || !features.device().is_cpu()) return;
    const auto rows = static_cast<std::size_t>(features.size(0));
    if (rows == 0) return;
    const std::size_t key_bytes = static_cast<std::size_t>(features.size(1)) * sizeof(double);
    if (!layout_ready_.load(std::memory_order_acquire) && !fix_layout(outputs, rows, key_bytes)) return;
    const Layout& layout = layout_;
    if (key_bytes != layout.key_bytes || outputs.size() != layout.specs.size()) return;
    for (std::size_t k = 0; k < layout.specs.size(); ++k) {
      const Tensor& t = outputs[k].tensor;
      if (outputs[k].name != layout.specs[k].name || t.dtype() != layout.specs[k].dtype || !t.device().is_cpu() ||
          t.dim() < 1 || static_cast<std::size_t>(t.size(0)) != rows || t.nbytes() != rows * layout.row_bytes[k]) {
        return;  // not the layout this cache stores
      }
    }
    const auto now = clock_->coarse_now();
    const auto* base = static_cast<const std::byte*>(features.data());
    for (std::size_t r = 0; r < rows; ++r) {
      const std::byte* key = base + r * key_bytes;
      const std::uint64_t h = hash_bytes(key, key_bytes);
      Shard& shard = own_shard();
      std::unique_lock<std::mutex> lock(shard.mutex, std::try_to_lock);
      if (!lock.owns_lock()) continue;
      const std::uint32_t slot = shard.claim(h);  // may throw std::bad_alloc; the chain drops it
      shard.stamp(slot, now);
      std::byte* dst = shard.arena(slot);
      std::memcpy(dst, key, key_bytes);
      std::size_t offset = key_bytes;
      for (std::size_t k = 0; k < layout.specs.size(); ++k) {
        std::memcpy(dst + offset, static_cast<const std::byte*>(outputs[k].tensor.data()) + r * layout.row_bytes[k],
                    layout.row_bytes[k]);
        offset += layout.row_bytes[k];
      }
      shard.touch(slot);
    }
  }

  std::string type() const override { return "cache"; }
  bool bounded() const override { return true; }

 private:
  // The shard this thread stores into.
  Shard& own_shard() const { return shards_[detail::thread_stripe() % shards_.size()]; }

  // Fixes the stored layout from the first answer seen; false when it cannot be stored.
  bool fix_layout(const NamedTensors& outputs, std::size_t rows, std::size_t key_bytes) const {
    std::lock_guard<std::mutex> lock(layout_mutex_);
    if (layout_ready_.load(std::memory_order_acquire)) return true;
    Layout l;
    l.key_bytes = key_bytes;
    l.slot_bytes = key_bytes;
    for (const auto& e : outputs) {
      if (!e.tensor.device().is_cpu() || e.tensor.dim() < 1 || static_cast<std::size_t>(e.tensor.size(0)) != rows) {
        return false;
      }
      l.specs.push_back({e.name, e.tensor.dtype(), {e.tensor.shape().begin() + 1, e.tensor.shape().end()}});
      l.row_bytes.push_back(e.tensor.nbytes() / rows);
      l.slot_bytes += l.row_bytes.back();
    }
    const std::size_t per_shard = (options_.capacity + shards_.size() - 1) / shards_.size();
    for (auto& s : shards_) s.init(per_shard, l.slot_bytes);
    layout_ = std::move(l);
    layout_ready_.store(true, std::memory_order_release);
    return true;
  }

  CacheOptions options_;
  std::shared_ptr<const Clock> clock_;
  mutable std::vector<Shard> shards_;
  mutable std::mutex layout_mutex_;
  mutable Layout layout_;  // written once, before layout_ready_
  mutable std::atomic<bool> layout_ready_{false};
};

}  // namespace

Result<std::shared_ptr<Stage>> make_cache_stage(CacheOptions options, std::shared_ptr<const Clock> clock) {
  if (options.capacity == 0 || options.capacity > 100'000'000) {
    return invalid_argument("cache: capacity must be 1 to 100000000 rows, got " + std::to_string(options.capacity));
  }
  if (options.time_to_live.count() <= 0) return invalid_argument("cache: time_to_live must be positive");
  if (clock == nullptr) clock = std::make_shared<SteadyClock>();
  return std::shared_ptr<Stage>(std::make_shared<CacheStage>(options, std::move(clock)));
}

}  // namespace ember
