// NASDAQ TotalView-ITCH 5.0 encoder: the messages a venue publishes about its book, written in
// the exact bytes lockstep::itch::ItchDecoder (itch.hpp) reads. Decoding stays with that decoder;
// this header only writes.
//
// Every message: type(1) stock_locate(2) tracking_number(2) timestamp(6, ns since midnight), then
// its fields; integers big-endian, prices Price(4) with 4 implied decimals, alpha fields
// left-justified and space-padded. Each struct lists its fields in wire order (wire.hpp), and its
// length is checked at compile time against the decoder's length table. Encode with
// wire::encode_message(m, out, capacity, &written) into a MoldUDP64 block
// (moldudp64::PacketBuilder::reserve) or any caller buffer.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lockstep/codecs/itch.hpp"
#include "lockstep/codecs/wire.hpp"

namespace lockstep::itch_encode {

using wire::U48;
using Stock = uint8_t[8];

// What every message carries after its type byte.
struct Header {
    uint16_t stock_locate;
    uint16_t tracking_number;
    U48 timestamp;  // ns since midnight
    template <class Self, class F>
    static constexpr void header_fields(Self& m, F& f) {
        f(m.stock_locate), f(m.tracking_number), f(m.timestamp);
    }
};

struct SystemEvent : wire::Message<'S', 12>, Header {
    uint8_t event_code;  // O start of messages, S start of system hours, Q start of market, ...
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) { header_fields(m, f), f(m.event_code); }
};

struct StockDirectory : wire::Message<'R', 39>, Header {
    Stock stock;
    uint8_t market_category, financial_status;
    uint32_t round_lot_size;
    uint8_t round_lots_only, issue_classification;
    uint8_t issue_subtype[2];
    uint8_t authenticity, short_sale_threshold, ipo_flag, luld_tier, etp_flag;
    uint32_t etp_leverage_factor;
    uint8_t inverse;
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) {
        header_fields(m, f), f(m.stock), f(m.market_category), f(m.financial_status);
        f(m.round_lot_size), f(m.round_lots_only), f(m.issue_classification);
        f(m.issue_subtype), f(m.authenticity), f(m.short_sale_threshold), f(m.ipo_flag);
        f(m.luld_tier), f(m.etp_flag), f(m.etp_leverage_factor), f(m.inverse);
    }
};

struct TradingAction : wire::Message<'H', 25>, Header {
    Stock stock;
    uint8_t trading_state;  // H halted, P paused, Q quotation only, T trading
    uint8_t reserved;
    uint8_t reason[4];
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) {
        header_fields(m, f), f(m.stock), f(m.trading_state), f(m.reserved), f(m.reason);
    }
};

// Add Order ('A'), and with MPID attribution ('F') when Attributed.
template <uint8_t Type, size_t Length, bool Attributed>
struct AddOrderOf : wire::Message<Type, Length>, Header {
    uint64_t order_reference;
    uint8_t side;  // B buy, S sell
    uint32_t shares;
    Stock stock;
    uint32_t price;
    uint8_t attribution[4];  // 'F' only
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) {
        Header::header_fields(m, f), f(m.order_reference), f(m.side), f(m.shares), f(m.stock);
        f(m.price);
        if constexpr (Attributed) f(m.attribution);
    }
};
using AddOrder = AddOrderOf<'A', 36, false>;
using AddOrderMpid = AddOrderOf<'F', 40, true>;

struct OrderExecuted : wire::Message<'E', 31>, Header {
    uint64_t order_reference;
    uint32_t executed_shares;
    uint64_t match_number;
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) {
        header_fields(m, f), f(m.order_reference), f(m.executed_shares), f(m.match_number);
    }
};

struct OrderExecutedWithPrice : wire::Message<'C', 36>, Header {
    uint64_t order_reference;
    uint32_t executed_shares;
    uint64_t match_number;
    uint8_t printable;  // Y or N
    uint32_t execution_price;
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) {
        header_fields(m, f), f(m.order_reference), f(m.executed_shares), f(m.match_number);
        f(m.printable), f(m.execution_price);
    }
};

struct OrderCancel : wire::Message<'X', 23>, Header {
    uint64_t order_reference;
    uint32_t canceled_shares;
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) {
        header_fields(m, f), f(m.order_reference), f(m.canceled_shares);
    }
};

struct OrderDelete : wire::Message<'D', 19>, Header {
    uint64_t order_reference;
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) { header_fields(m, f), f(m.order_reference); }
};

struct OrderReplace : wire::Message<'U', 35>, Header {
    uint64_t original_reference, new_reference;
    uint32_t shares, price;
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) {
        header_fields(m, f), f(m.original_reference), f(m.new_reference), f(m.shares);
        f(m.price);
    }
};

// Non-cross trade: an execution against a non-displayed order.
struct Trade : wire::Message<'P', 44>, Header {
    uint64_t order_reference;
    uint8_t side;
    uint32_t shares;
    Stock stock;
    uint32_t price;
    uint64_t match_number;
    template <class Self, class F>
    static constexpr void fields(Self& m, F&& f) {
        header_fields(m, f), f(m.order_reference), f(m.side), f(m.shares), f(m.stock);
        f(m.price), f(m.match_number);
    }
};

// Every encoder writes as many bytes as the decoder's length table says its type has.
template <class... M>
constexpr bool lengths_match_decoder(wire::TypeSet<M...>) {
    return ((itch::kLengths.len[M::kType] == M::kLength) && ...);
}

// The type set for wire's generic access by type byte (bindings, tools).
using Types = wire::TypeSet<SystemEvent, StockDirectory, TradingAction, AddOrder, AddOrderMpid,
                            OrderExecuted, OrderExecutedWithPrice, OrderCancel, OrderDelete,
                            OrderReplace, Trade>;
static_assert(lengths_match_decoder(Types{}));

using wire::encode_message;

}  // namespace lockstep::itch_encode
