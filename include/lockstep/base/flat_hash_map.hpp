// Open-addressing hash map from a 64-bit key to a 32-bit value (an index into some pool).
//
// Linear probing over a power-of-two table, backward-shift deletion (no tombstones, so probe
// sequences never degrade under add/delete churn), doubling growth. Lookups, inserts and erases
// never allocate; only an insert that crosses the load limit does, so memory grows amortized with
// the number of live keys and never per operation in steady state.
//
// Deliberately offers no iteration: slot order depends on capacity and history, and lockstep's
// outputs must depend only on the event stream. Whatever has to be enumerated is kept in an
// ordered structure elsewhere and only looked up here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <type_traits>
#include <utility>

namespace lockstep {

template <class Key>
class FlatHashMap {
    static_assert(std::is_same_v<Key, int64_t> || std::is_same_v<Key, uint64_t>,
                  "FlatHashMap keys are 64-bit integers");

public:
    // Returned by lookups that miss. It doubles as the empty-slot marker, which is why it can
    // never be stored as a value.
    static constexpr uint32_t kMissing = UINT32_MAX;

    explicit FlatHashMap(size_t expected_keys = 0) { reserve(expected_keys); }
    ~FlatHashMap() { std::free(slots_); }

    FlatHashMap(const FlatHashMap&) = delete;
    FlatHashMap& operator=(const FlatHashMap&) = delete;
    FlatHashMap(FlatHashMap&& other) noexcept { steal(other); }
    FlatHashMap& operator=(FlatHashMap&& other) noexcept {
        if (this != &other) {
            std::free(slots_);
            steal(other);
        }
        return *this;
    }

    size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    size_t capacity() const noexcept { return mask_ + 1; }

    // Makes room for `keys` keys without further allocation. Allocates (and may throw
    // std::bad_alloc); call it up front, not on a hot path.
    void reserve(size_t keys) {
        size_t cap = kMinCapacity;
        while (cap * kMaxLoadNum < keys * kMaxLoadDen) cap *= 2;
        if (slots_ == nullptr || cap > capacity()) rehash(cap);
    }

    uint32_t find(Key key) const noexcept {
        const uint64_t k = static_cast<uint64_t>(key);
        for (size_t i = home(k);; i = (i + 1) & mask_) {
            const Slot& s = slots_[i];
            if (s.value == kMissing) return kMissing;
            if (s.key == k) return s.value;
        }
    }

    bool contains(Key key) const noexcept { return find(key) != kMissing; }

    // Starts loading the slot where `key`'s probe begins. A caller that knows its next few keys
    // asks for them first, so their cache misses overlap instead of following one another.
    void prefetch(Key key) const noexcept {
        __builtin_prefetch(&slots_[home(static_cast<uint64_t>(key))]);
    }

    // The value cell of `key`, inserting the key if absent (*inserted tells which). A freshly
    // inserted cell holds kMissing: the caller must store a real value in it before the next call
    // on this map, or the slot reads as empty. One probe sequence for check-and-insert.
    // Growing aborts via std::terminate if memory runs out (hot paths are noexcept).
    uint32_t* find_or_insert(Key key, bool* inserted) noexcept {
        if ((size_ + 1) * kMaxLoadDen > capacity() * kMaxLoadNum) [[unlikely]] grow();
        const uint64_t k = static_cast<uint64_t>(key);
        for (size_t i = home(k);; i = (i + 1) & mask_) {
            Slot& s = slots_[i];
            if (s.value == kMissing) {
                s.key = k;
                ++size_;
                *inserted = true;
                return &s.value;
            }
            if (s.key == k) {
                *inserted = false;
                return &s.value;
            }
        }
    }

    // Inserts key -> value unless the key is present; false (and no change) if it was.
    bool insert(Key key, uint32_t value) noexcept {
        bool inserted;
        uint32_t* cell = find_or_insert(key, &inserted);
        if (inserted) *cell = value;
        return inserted;
    }

    // Removes `key` and returns its value, or kMissing if it was absent.
    uint32_t erase(Key key) noexcept {
        const Cell cell = locate(key);
        if (cell.value != kMissing) erase_at(cell);
        return cell.value;
    }

    // Where a key sits, for callers that look a key up and then may erase it: erase_at then
    // needs no second probe. Valid until the next insert or erase.
    struct Cell {
        size_t index;
        uint32_t value;  // kMissing if the key is absent
    };

    Cell locate(Key key) const noexcept {
        const uint64_t k = static_cast<uint64_t>(key);
        for (size_t i = home(k);; i = (i + 1) & mask_) {
            const Slot& s = slots_[i];
            if (s.value == kMissing || s.key == k) return Cell{i, s.value};
        }
    }

    // Removes the key found by locate(); the cell must hold one (value != kMissing).
    void erase_at(Cell cell) noexcept {
        size_t hole = cell.index;
        // Backward shift: pull later members of the cluster into the hole whenever the hole lies
        // on their probe path, so every remaining key stays reachable without tombstones.
        for (size_t j = (hole + 1) & mask_;; j = (j + 1) & mask_) {
            Slot& s = slots_[j];
            if (s.value == kMissing) break;
            const size_t h = home(s.key);
            if (((j - h) & mask_) >= ((j - hole) & mask_)) {
                slots_[hole] = s;
                hole = j;
            }
        }
        slots_[hole].value = kMissing;
        --size_;
    }

    // Forgets every key, keeping the capacity. O(capacity).
    void clear() noexcept {
        for (size_t i = 0; i <= mask_; ++i) slots_[i].value = kMissing;
        size_ = 0;
    }

private:
    struct Slot {
        uint64_t key;
        uint32_t value;
    };

    static constexpr size_t kMinCapacity = 16;
    // At most half full: linear probing stays at ~1.5 probes per hit and ~2.5 per miss.
    static constexpr size_t kMaxLoadNum = 1;
    static constexpr size_t kMaxLoadDen = 2;

    // Fibonacci hashing: the top bits of key * 2^64/phi depend on every key bit, and consecutive
    // keys (sequential order ids, adjacent prices) land far apart.
    size_t home(uint64_t k) const noexcept {
        return static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> shift_);
    }

    void grow() noexcept { rehash(capacity() * 2); }

    void rehash(size_t new_capacity) noexcept {
        Slot* old = slots_;
        const size_t old_capacity = old == nullptr ? 0 : capacity();
        slots_ = static_cast<Slot*>(std::malloc(new_capacity * sizeof(Slot)));
        if (slots_ == nullptr) std::terminate();
        mask_ = new_capacity - 1;
        shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(new_capacity));
        for (size_t i = 0; i < new_capacity; ++i) slots_[i].value = kMissing;
        for (size_t i = 0; i < old_capacity; ++i) {
            if (old[i].value == kMissing) continue;
            size_t j = home(old[i].key);
            while (slots_[j].value != kMissing) j = (j + 1) & mask_;
            slots_[j] = old[i];
        }
        std::free(old);
    }

    void steal(FlatHashMap& other) noexcept {
        slots_ = std::exchange(other.slots_, nullptr);
        mask_ = other.mask_;
        shift_ = other.shift_;
        size_ = std::exchange(other.size_, 0);
        // Leave the source usable: an empty map of minimal capacity.
        other.rehash(kMinCapacity);
    }

    Slot* slots_ = nullptr;
    size_t mask_ = 0;
    unsigned shift_ = 64;
    size_t size_ = 0;
};

}  // namespace lockstep
