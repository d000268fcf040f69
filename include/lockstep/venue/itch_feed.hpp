// The loopback venue's market data: canonical events -> ITCH 5.0 messages in MoldUDP64 packets.
//
// The caller (lockstep.venue.loopback.feed) hands batches of event columns and a buffer; the feed
// writes whole datagrams back to back into it (each a MoldUDP64 packet of at most packet_bytes),
// their lengths into a caller array, and the caller sends them in one sendmmsg batch. Sequence
// numbers run on across calls. docs/loopback-venue.md is normative; in short:
//
// - Each instrument is a stock: locate = instrument index + 1, its symbol in every message that
//   names a stock. Prices are Price(4): ticks * the instrument's price multiplier (how many
//   1/10,000ths one tick is); shares are the dataset's quantity in size increments.
// - Order references are the venue's own, from 1 up, unique across instruments (the ITCH
//   receiver's order map is one map for the whole feed): an event's order id is looked up in its
//   instrument's map.
// - L3 instruments as the events say: add -> 'A', execute -> 'E' (the dataset's TRADE of the same
//   venue message is that execution's print and is not repeated), modify keeping priority (same
//   price, not more shares) -> 'X' of the difference, any other modify -> 'U' under a new
//   reference, delete -> 'D', a TRADE of its own -> 'P', a book clear -> 'D' of each live order.
// - L2 instruments: one venue order per price level. A level appears -> 'A', shrinks -> 'X' of the
//   difference, grows -> 'U' (same price, the new quantity, a new reference), empties -> 'D'. A
//   receiver's L3 book summed by level is then exactly the L2 book.
// - Events no message can carry (a price or quantity outside ITCH's 32 bits, a reference the feed
//   does not know, execution and control events) are skipped and counted by reason.
// - With the venue's trading side attached (venue/replayed_markets.hpp), every event consumed is
//   also handed to it, after its messages are written: its books and matchers follow the stream.
//   An event that fills one of our resting orders ends the call (the caller sends the fill's OUCH
//   message at that place in the stream); fills of our orders the feed shows go out at once as
//   'E' of the shown order. show_own_orders() publishes what else changed in our resting orders
//   (L3 instruments only: an L2 book is shown one order per level, where ours has no place).
// - snapshot() writes the feed's books as a receiver that lost part of the feed rebuilds them
//   from (GLIMPSE-style, docs/protocols.md "Snapshots"): a control path, it allocates.
//
// Hot code: noexcept, returns a Status, allocation-free per event (the order pool and maps grow
// by doubling only when more orders are live than ever before).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "lockstep/base/flat_hash_map.hpp"
#include "lockstep/base/status.hpp"
#include "lockstep/codecs/itch_encode.hpp"
#include "lockstep/codecs/moldudp64.hpp"
#include "lockstep/core/events.hpp"
#include "lockstep/venue/replayed_markets.hpp"

namespace lockstep::venue {

namespace ie = lockstep::itch_encode;

// Why an event was not shown. Mirrored by lockstep.enums.FeedSkip.
enum class FeedSkip : uint8_t {
    NotMarketData = 0,    // execution and control events, BBO and phase events
    UnknownOrder = 1,     // an order id (L3) the feed has no live order for
    OutOfRange = 2,       // a price or quantity ITCH's 32-bit fields cannot carry
    NoChange = 3,         // a modify or level update that changes nothing a receiver sees
    WrongBookKind = 4,    // an L3 event on an L2 instrument or the reverse
    UnknownInstrument = 5,
    ExecutionPrint = 6,   // the TRADE of an execution already sent as 'E' (its print is the 'E')
    Count = 7,
};

// Set in the order id (the map key) of our own orders shown in the feed: never a dataset's id.
constexpr uint64_t kOwnOrderBit = uint64_t{1} << 63;

struct FeedCounts {
    uint64_t messages = 0;  // ITCH messages written (= sequence numbers used)
    uint64_t packets = 0;
    uint64_t events = 0;    // events consumed
    uint64_t skipped[size_t(FeedSkip::Count)] = {};
};

class ItchFeed {
public:
    // Per packet, at most this much: NASDAQ keeps a datagram within one Ethernet frame.
    static constexpr size_t kDefaultPacketBytes = 1400;
    static constexpr size_t kMaxMessageBytes = 2 + 44;  // block prefix + the longest we write ('P')

    ItchFeed(const uint8_t* session, size_t packet_bytes, int64_t day_start_ns,
             uint64_t first_sequence, size_t expected_orders) {
        std::memcpy(session_, session, moldudp64::kSessionLength);
        packet_bytes_ = packet_bytes;
        day_start_ = day_start_ns;
        last_event_ts_ = day_start_ns;
        next_sequence_ = first_sequence;
        pool_.reserve(expected_orders);
    }

    // Declares instrument `index` (allocates; setup only). book_l2: one venue order per level.
    void add_instrument(uint32_t index, const uint8_t* symbol8, uint32_t price_multiplier,
                        bool book_l2) {
        if (index >= instruments_.size()) {
            instruments_.resize(index + 1);
            maps_.resize(2 * (index + 1));
        }
        Instrument& in = instruments_[index];
        std::memcpy(in.stock, symbol8, 8);
        in.multiplier = price_multiplier;
        in.l2 = book_l2;
        in.known = true;
    }

    // Where the next calls write: `capacity` bytes and room for `max_packets` datagrams.
    void begin(uint8_t* out, size_t capacity, uint32_t* lengths, size_t max_packets) noexcept {
        out_ = out;
        capacity_ = capacity;
        lengths_ = lengths;
        max_packets_ = max_packets;
        used_ = 0;
        packets_ = 0;
        open_ = false;
    }
    // Closes the packet being filled; the number of datagrams written since begin().
    size_t finish() noexcept {
        close_packet();
        return packets_;
    }

    Status system_event(uint8_t code, int64_t ts) noexcept {
        ie::SystemEvent m{};
        stamp(m, 0, ts);
        m.event_code = code;
        return put(m);
    }

    // The stock directory of a declared instrument: round lot 1, NASDAQ Global Select, normal.
    Status stock_directory(uint32_t index, int64_t ts) noexcept {
        if (index >= instruments_.size() || !instruments_[index].known) return Status::UnknownInstrument;
        return put(directory_of(index, ts));
    }

    // The feed's books as of now, for a receiver to rebuild them from: a Stock Directory of every
    // declared instrument (index order), then per instrument (index order) an Add Order of every
    // order live in the feed's view of its book, ours shown included, in ascending reference
    // order. References are handed out in the order the feed published the 'A' or 'U' that gave
    // an order its current one, so this is the time priority a receiver of the feed holds (the
    // instrument's list keeps an order's place through a 'U', so its order is not). Our orders
    // sit where the feed showed them; where the venue's matcher really queues them relative to
    // the dataset's orders is not the feed's to know (the same holds on the feed itself).
    // Each message is appended to `out` as a block [u16 big-endian length][message], stamped
    // with the ts_event of the last event the feed consumed (0 past the day start before any).
    // Returns how many; every message numbered below next_sequence() is reflected, none from it
    // on. Control path: allocates.
    size_t snapshot(std::vector<uint8_t>& out) const {
        const int64_t ts = last_event_ts_;
        size_t n = 0;
        for (uint32_t in = 0; in < instruments_.size(); ++in) {
            if (instruments_[in].known) n += append_block(out, directory_of(in, ts));
        }
        std::vector<uint32_t> slots;
        for (uint32_t in = 0; in < instruments_.size(); ++in) {
            if (!instruments_[in].known) continue;
            slots.clear();
            for (uint32_t o = instruments_[in].head; o != kNone; o = pool_[o].next) slots.push_back(o);
            for (const uint32_t o : own_) {
                if (pool_[o].instrument == in) slots.push_back(o);
            }
            std::sort(slots.begin(), slots.end(),
                      [&](uint32_t a, uint32_t b) { return pool_[a].reference < pool_[b].reference; });
            for (const uint32_t o : slots) n += append_block(out, add_of(in, ts, pool_[o]));
        }
        return n;
    }

    // The trading side every consumed event is handed to (null: none). Not owned.
    void attach(ReplayedMarkets* markets) noexcept { markets_ = markets; }

    // Encodes events [from, ev.size) until one of them stops it; *next is the first event not
    // consumed. Ok: all consumed, or (*filled set) the event before *next filled one of our
    // orders: its instrument's matcher events wait to be read. WouldBlock: the venue message
    // starting at *next is due after `until_ts` (pacing; *due_ts says when). OutputFull: the
    // buffer or the message budget (`max_messages` more) cannot take the next event's messages:
    // send and call again.
    Status encode(const EventColumns& ev, size_t from, int64_t until_ts, uint64_t max_messages,
                  size_t* next, int64_t* due_ts, bool* filled) noexcept {
        const uint64_t budget_end = counts_.messages + max_messages;
        size_t i = from;
        Status st = Status::Ok;
        *filled = false;
        for (; i < ev.size; ++i) {
            if (at_message_start_ && ev.ts_event[i] > until_ts) {
                *due_ts = ev.ts_event[i];
                st = Status::WouldBlock;
                break;
            }
            size_t needed = messages_needed(ev, i);
            if (markets_ != nullptr && ev.instrument[i] < markets_->instrument_count()) {
                needed += markets_->resting(ev.instrument[i]);  // an 'E' per order it may fill
            }
            if (counts_.messages + needed > budget_end || !room_for(needed)) {
                st = Status::OutputFull;
                break;
            }
            apply(ev, i);
            ++counts_.events;
            const bool fills = markets_ != nullptr && markets_->on_event(ev, i);
            if (fills) [[unlikely]] show_own_fills(ev.instrument[i], ev.ts_event[i]);
            at_message_start_ = (ev.flags[i] & flags::kLast) != 0;
            if (at_message_start_) execute_in_message_ = false;
            if (fills) [[unlikely]] {
                *filled = true;
                ++i;
                break;
            }
        }
        // snapshot()'s clock, set once a call rather than per event: the loop stays as it was.
        if (i > from) last_event_ts_ = ev.ts_event[i - 1];
        *next = i;
        return st;
    }

    // Publishes what changed in our resting orders on L3 instruments since the feed last showed
    // them: 'A' for a new one, 'X' for fewer shares at the same price, 'U' for any other change,
    // 'D' for one that left (canceled; filled ones left with their 'E'). Stamped `ts`. OutputFull
    // (nothing written): the buffer cannot surely take them; call again after begin().
    Status show_own_orders(const ReplayedMarkets& markets, int64_t ts) noexcept {
        size_t needed = own_.size();
        for (uint32_t in = 0; in < markets.instrument_count(); ++in) needed += markets.resting(in);
        if (!room_for(needed)) return Status::OutputFull;
        size_t w = 0;
        for (size_t k = 0; k < own_.size(); ++k) {
            const uint32_t slot = own_[k];
            const Order& o = pool_[slot];
            const RestingOrder* r = markets.find_order(o.instrument, o.key & ~kOwnOrderBit);
            uint32_t price = 0, shares = 0;
            if (r == nullptr || !to_wire(o.instrument, r->price, r->qty, &price, &shares) ||
                shares == 0) {
                remove(o.instrument, ts, slot);
                continue;
            }
            if (price == o.price && shares < o.shares) cancel(o.instrument, ts, slot, o.shares - shares);
            else if (price != o.price || shares != o.shares) replace(o.instrument, ts, slot, price, shares);
            own_[w++] = slot;
        }
        own_.resize(w);
        for (uint32_t in = 0; in < markets.instrument_count(); ++in) {
            if (in >= instruments_.size() || !instruments_[in].known || instruments_[in].l2) continue;
            for (size_t k = 0; k < markets.resting(in); ++k) {
                const RestingOrder& r = markets.resting_at(in, k);
                const int64_t key = int64_t(r.client_order_id | kOwnOrderBit);
                uint32_t price = 0, shares = 0;
                if (maps_[2 * in].find(key) != FlatHashMap<int64_t>::kMissing ||
                    !to_wire(in, r.price, r.qty, &price, &shares) || shares == 0)
                    continue;
                const uint32_t slot = new_order(in, key, r.side == Side::Bid ? 'B' : 'S', price, shares,
                                                /*own=*/true);
                add(in, ts, slot);
                if (own_.size() == own_.capacity()) own_.reserve(own_.capacity() * 2 + 16);
                own_.push_back(slot);
            }
        }
        return Status::Ok;
    }

    size_t own_shown() const noexcept { return own_.size(); }

    uint64_t next_sequence() const noexcept { return next_sequence_; }
    const FeedCounts& counts() const noexcept { return counts_; }
    size_t live_orders() const noexcept { return live_; }

private:
    struct Instrument {
        uint8_t stock[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
        uint32_t multiplier = 1;
        bool l2 = false;
        bool known = false;
        uint32_t head = kNone;  // live orders of this instrument, a doubly linked list in pool_
    };
    struct Order {
        uint64_t reference;
        int64_t key;  // in its map: the order id (L3) or the price (L2)
        uint32_t price;  // Price(4)
        uint32_t shares;
        uint32_t instrument;
        uint32_t prev, next;
        uint8_t side;  // 'B' or 'S'
        bool own;      // ours: not in the instrument's list (a dataset's book clear keeps it)
    };
    static constexpr uint32_t kNone = UINT32_MAX;

    template <class M>
    void stamp(M& m, uint32_t index, int64_t ts) const noexcept {
        m.stock_locate = uint16_t(index == 0 && M::kType == 'S' ? 0 : index + 1);
        m.tracking_number = 0;
        m.timestamp.value = uint64_t(ts - day_start_) & ((uint64_t(1) << 48) - 1);
    }

    // The stock directory of declared instrument `index`: round lot 1, NASDAQ Global Select,
    // normal.
    ie::StockDirectory directory_of(uint32_t index, int64_t ts) const noexcept {
        ie::StockDirectory m{};
        stamp(m, index, ts);
        std::memcpy(m.stock, instruments_[index].stock, 8);
        m.market_category = 'Q', m.financial_status = 'N', m.round_lot_size = 1;
        m.round_lots_only = 'N', m.issue_classification = 'C';
        m.issue_subtype[0] = 'Z', m.issue_subtype[1] = ' ';
        m.authenticity = 'P', m.short_sale_threshold = ' ', m.ipo_flag = ' ', m.luld_tier = ' ';
        m.etp_flag = ' ', m.inverse = ' ';
        return m;
    }

    ie::AddOrder add_of(uint32_t in, int64_t ts, const Order& o) const noexcept {
        ie::AddOrder m{};
        stamp(m, in, ts);
        m.order_reference = o.reference, m.side = o.side, m.shares = o.shares;
        std::memcpy(m.stock, instruments_[in].stock, 8);
        m.price = o.price;
        return m;
    }

    // Appends `m` as a block [u16 big-endian length][message]; 1 (one message).
    template <class M>
    static size_t append_block(std::vector<uint8_t>& out, const M& m) {
        static_assert(M::kLength <= 0xFFFF);
        const size_t at = out.size();
        out.resize(at + 2 + M::kLength);
        out[at] = uint8_t(M::kLength >> 8), out[at + 1] = uint8_t(M::kLength & 0xFF);
        size_t written;
        ie::encode_message(m, out.data() + at + 2, M::kLength, &written);
        return 1;
    }

    bool room_for(size_t messages) const noexcept {
        if (messages == 0) return true;
        // Worst case: every packet wastes less than one message's room at its end.
        const size_t per_packet = (packet_bytes_ - moldudp64::kHeaderLength) / kMaxMessageBytes;
        const size_t in_open = open_ ? (packet_cap() - builder_.size()) / kMaxMessageBytes : 0;
        if (messages <= in_open) return true;
        const size_t fresh = (messages - in_open + per_packet - 1) / per_packet;
        const size_t start = used_ + (open_ ? builder_.size() : 0);
        return packets_ + (open_ ? 1 : 0) + fresh <= max_packets_ &&
               start + fresh * packet_bytes_ <= capacity_;
    }

    // The room of the packet being filled: the datagram budget, or what is left of the buffer.
    size_t packet_cap() const noexcept {
        return capacity_ - used_ < packet_bytes_ ? capacity_ - used_ : packet_bytes_;
    }

    // How many messages event i can write (an upper bound: a book clear writes one per order).
    size_t messages_needed(const EventColumns& ev, size_t i) const noexcept {
        if (EventKind(ev.kind[i]) != EventKind::BookClear) return 1;
        const uint32_t in = ev.instrument[i];
        if (in >= instruments_.size()) return 0;
        size_t n = 0;
        for (uint32_t o = instruments_[in].head; o != kNone; o = pool_[o].next) ++n;
        return n;
    }

    void close_packet() noexcept {
        if (!open_) return;
        lengths_[packets_++] = uint32_t(builder_.size());
        used_ += builder_.size();
        ++counts_.packets;
        open_ = false;
    }

    // The caller checked room_for: a message always finds room in this packet or a fresh one.
    template <class M>
    Status put(const M& m) noexcept {
        if (!open_ || !room_in_open(M::kLength)) {
            close_packet();
            if (packets_ == max_packets_ || capacity_ - used_ < moldudp64::kHeaderLength + 2 + M::kLength)
                return Status::OutputFull;
            builder_.begin(out_ + used_, packet_cap(), session_, next_sequence_);
            open_ = true;
        }
        uint8_t* at = builder_.reserve(M::kLength);
        size_t written;
        ie::encode_message(m, at, M::kLength, &written);
        ++next_sequence_;
        ++counts_.messages;
        return Status::Ok;
    }
    bool room_in_open(size_t n) const noexcept { return builder_.size() + 2 + n <= packet_cap(); }

    void skip(FeedSkip why) noexcept { ++counts_.skipped[size_t(why)]; }

    FlatHashMap<int64_t>& map_of(uint32_t in, uint8_t side) noexcept {
        return maps_[2 * in + (instruments_[in].l2 && side == 'S' ? 1 : 0)];
    }

    uint32_t new_order(uint32_t in, int64_t key, uint8_t side, uint32_t price, uint32_t shares,
                       bool own = false) noexcept {
        uint32_t slot;
        if (!free_.empty()) {
            slot = free_.back();
            free_.pop_back();
        } else {
            slot = uint32_t(pool_.size());
            pool_.push_back(Order{});  // grows by doubling past the reserve: amortized, not per event
        }
        Order& o = pool_[slot];
        o = Order{next_reference_++, key, price, shares, in, kNone, own ? kNone : instruments_[in].head,
                  side, own};
        if (!own) {
            if (o.next != kNone) pool_[o.next].prev = slot;
            instruments_[in].head = slot;
        }
        map_of(in, side).insert(key, slot);
        ++live_;
        return slot;
    }

    void drop_order(uint32_t slot) noexcept {
        Order& o = pool_[slot];
        map_of(o.instrument, o.side).erase(o.key);
        if (!o.own) {
            if (o.prev != kNone) pool_[o.prev].next = o.next;
            else instruments_[o.instrument].head = o.next;
            if (o.next != kNone) pool_[o.next].prev = o.prev;
        }
        if (free_.size() == free_.capacity()) free_.reserve(free_.capacity() * 2 + 64);
        free_.push_back(slot);
        --live_;
    }

    void add(uint32_t in, int64_t ts, uint32_t slot) noexcept { put(add_of(in, ts, pool_[slot])); }
    void remove(uint32_t in, int64_t ts, uint32_t slot) noexcept {
        ie::OrderDelete m{};
        stamp(m, in, ts);
        m.order_reference = pool_[slot].reference;
        put(m);
        drop_order(slot);
    }
    void cancel(uint32_t in, int64_t ts, uint32_t slot, uint32_t shares) noexcept {
        ie::OrderCancel m{};
        stamp(m, in, ts);
        m.order_reference = pool_[slot].reference;
        m.canceled_shares = shares;
        pool_[slot].shares -= shares;
        put(m);
    }
    void replace(uint32_t in, int64_t ts, uint32_t slot, uint32_t price, uint32_t shares) noexcept {
        Order& o = pool_[slot];
        ie::OrderReplace m{};
        stamp(m, in, ts);
        m.original_reference = o.reference;
        o.reference = next_reference_++;
        o.price = price, o.shares = shares;
        m.new_reference = o.reference, m.shares = shares, m.price = price;
        put(m);
    }

    // 'E' of `shares` (at most what the order shows) of a shown order, with the next match number.
    void execute(uint32_t in, int64_t ts, uint32_t slot, uint32_t shares) noexcept {
        const uint32_t had = pool_[slot].shares;
        if (shares > had) shares = had;
        ie::OrderExecuted m{};
        stamp(m, in, ts);
        m.order_reference = pool_[slot].reference;
        m.executed_shares = shares, m.match_number = ++match_number_;
        put(m);
        if (shares == had) drop_order(slot);
        else pool_[slot].shares -= shares;
    }

    // The fills the trading side just reported on `in`: an 'E' of each filled order the feed shows
    // (our orders it does not show, and the events themselves, are the caller's). A fully
    // executed order leaves the shown list.
    void show_own_fills(uint32_t in, int64_t ts) noexcept {
        if (in >= instruments_.size() || !instruments_[in].known || instruments_[in].l2) return;
        for (const MatchEvent& e : markets_->events(in)) {
            if (e.kind != MatchEventKind::Fill) continue;
            const uint32_t slot = maps_[2 * in].find(int64_t(e.client_order_id | kOwnOrderBit));
            uint32_t price = 0, shares = 0;
            if (slot == FlatHashMap<int64_t>::kMissing || !to_wire(in, 0, e.qty, &price, &shares)) continue;
            const bool leaves = shares >= pool_[slot].shares;
            execute(in, ts, slot, shares);
            if (leaves) {
                for (size_t k = 0; k < own_.size(); ++k) {
                    if (own_[k] != slot) continue;
                    own_.erase(own_.begin() + std::ptrdiff_t(k));  // shifts: no allocation
                    break;
                }
            }
        }
    }

    // ITCH's 32-bit fields, or false.
    bool to_wire(uint32_t in, int64_t price, int64_t qty, uint32_t* wp, uint32_t* wq) const noexcept {
        if (price < 0 || qty < 0 || price > int64_t(UINT32_MAX) || qty > int64_t(UINT32_MAX))
            return false;
        const uint64_t p = uint64_t(price) * instruments_[in].multiplier;  // both < 2^32: fits
        if (p > UINT32_MAX) return false;
        *wp = uint32_t(p), *wq = uint32_t(qty);
        return true;
    }

    void apply(const EventColumns& ev, size_t i) noexcept {
        const EventKind kind = EventKind(ev.kind[i]);
        const uint32_t in = ev.instrument[i];
        if (uint8_t(kind) >= kMarketKindEnd || kind == EventKind::VenueBbo || kind == EventKind::None)
            return skip(FeedSkip::NotMarketData);
        if (in >= instruments_.size() || !instruments_[in].known) return skip(FeedSkip::UnknownInstrument);
        const int64_t ts = ev.ts_event[i];
        const bool l2 = instruments_[in].l2;
        const uint8_t side = Side(ev.side[i]) == Side::Bid ? 'B' : 'S';
        uint32_t price = 0, shares = 0;
        switch (kind) {
            case EventKind::Trade: {
                if (execute_in_message_) return skip(FeedSkip::ExecutionPrint);
                if (!to_wire(in, ev.price[i], ev.qty[i], &price, &shares)) return skip(FeedSkip::OutOfRange);
                ie::Trade m{};
                stamp(m, in, ts);
                // The hidden resting order's side: opposite the aggressor; 'B' when unknown.
                m.side = Side(ev.side[i]) == Side::Bid ? 'S' : 'B';
                m.shares = shares, m.price = price, m.match_number = ++match_number_;
                std::memcpy(m.stock, instruments_[in].stock, 8);
                put(m);
                return;
            }
            case EventKind::BookClear:
                while (instruments_[in].head != kNone) remove(in, ts, instruments_[in].head);
                return;
            case EventKind::L2Set: {
                if (!l2) return skip(FeedSkip::WrongBookKind);
                if (Side(ev.side[i]) == Side::None || !to_wire(in, ev.price[i], ev.qty[i], &price, &shares))
                    return skip(FeedSkip::OutOfRange);
                const uint32_t slot = map_of(in, side).find(ev.price[i]);
                if (slot == FlatHashMap<int64_t>::kMissing) {
                    if (shares == 0) return skip(FeedSkip::NoChange);
                    return add(in, ts, new_order(in, ev.price[i], side, price, shares));
                }
                const uint32_t had = pool_[slot].shares;
                if (shares == 0) return remove(in, ts, slot);
                if (shares < had) return cancel(in, ts, slot, had - shares);
                if (shares > had) return replace(in, ts, slot, price, shares);
                return skip(FeedSkip::NoChange);
            }
            case EventKind::L3Add: {
                if (l2) return skip(FeedSkip::WrongBookKind);
                if (Side(ev.side[i]) == Side::None || !to_wire(in, ev.price[i], ev.qty[i], &price, &shares) ||
                    shares == 0)
                    return skip(FeedSkip::OutOfRange);
                const uint32_t old = map_of(in, side).find(int64_t(ev.order_id[i]));
                if (old != FlatHashMap<int64_t>::kMissing) remove(in, ts, old);  // a duplicate id replaces
                return add(in, ts, new_order(in, int64_t(ev.order_id[i]), side, price, shares));
            }
            default: break;
        }
        if (l2) return skip(FeedSkip::WrongBookKind);
        const uint32_t slot = maps_[2 * in].find(int64_t(ev.order_id[i]));
        if (slot == FlatHashMap<int64_t>::kMissing) return skip(FeedSkip::UnknownOrder);
        const uint32_t had = pool_[slot].shares;
        switch (kind) {
            case EventKind::L3Delete: return remove(in, ts, slot);
            case EventKind::L3Execute:
                if (!to_wire(in, 0, ev.qty[i], &price, &shares)) return skip(FeedSkip::OutOfRange);
                execute(in, ts, slot, shares);
                execute_in_message_ = true;
                return;
            case EventKind::L3Modify: {
                if (!to_wire(in, ev.price[i], ev.qty[i], &price, &shares)) return skip(FeedSkip::OutOfRange);
                if (shares == 0) return remove(in, ts, slot);
                if (price == pool_[slot].price && shares < had) return cancel(in, ts, slot, had - shares);
                if (price == pool_[slot].price && shares == had) return skip(FeedSkip::NoChange);
                return replace(in, ts, slot, price, shares);
            }
            default: return skip(FeedSkip::NotMarketData);
        }
    }

    uint8_t session_[moldudp64::kSessionLength];
    size_t packet_bytes_;
    int64_t day_start_;
    int64_t last_event_ts_;  // ts_event of the last event consumed (the day start before any)
    uint64_t next_sequence_;
    uint64_t next_reference_ = 1;
    uint64_t match_number_ = 0;
    bool at_message_start_ = true;
    bool execute_in_message_ = false;
    std::vector<Instrument> instruments_;
    std::vector<FlatHashMap<int64_t>> maps_;  // 2 per instrument: L3 orders by id; L2 bid, ask levels
    std::vector<Order> pool_;
    std::vector<uint32_t> free_;
    std::vector<uint32_t> own_;  // our orders shown, as pool slots, in the order first shown
    ReplayedMarkets* markets_ = nullptr;
    size_t live_ = 0;
    FeedCounts counts_;

    uint8_t* out_ = nullptr;
    size_t capacity_ = 0;
    uint32_t* lengths_ = nullptr;
    size_t max_packets_ = 0;
    size_t used_ = 0;
    size_t packets_ = 0;
    bool open_ = false;
    moldudp64::PacketBuilder builder_;
};

}  // namespace lockstep::venue
