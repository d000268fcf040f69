// Intents: what a Strategy asks for in one step (submit, cancel, replace).
//
// Intents are ephemeral: they live inside the step that produced them. Risk judges them
// (risk.hpp) and never changes them; Queue Processing turns allowed ones into Orders.
#pragma once

#include <cstdint>

#include "lockstep/core/events.hpp"

namespace lockstep {

// Values are part of the journal and config surface: never renumber, only add. 0 is left unused
// so that a zeroed Intent is an unknown kind, which Risk denies, rather than a valid submit.
enum class IntentKind : uint8_t {
    SubmitLimit = 1,
    SubmitMarket = 2,
    Cancel = 3,   // cancel `target_order_id`
    Replace = 4,  // `target_order_id` now rests at `price`/`qty` (same instrument and side)
};

// A new order (its client_order_id becomes an Order once dispatched).
inline constexpr bool is_submit(IntentKind k) noexcept {
    return k == IntentKind::SubmitLimit || k == IntentKind::SubmitMarket;
}

enum class TimeInForce : uint8_t {
    GTC = 0,
    IOC = 1,
    PostOnly = 2,
};

struct Intent {
    uint32_t instrument = 0;
    IntentKind kind{};
    Side side = Side::None;
    TimeInForce tif = TimeInForce::GTC;
    int64_t price = 0;  // ticks; ignored for SubmitMarket and Cancel
    int64_t qty = 0;    // lots; ignored for Cancel
    uint64_t client_order_id = 0;
    uint64_t target_order_id = 0;  // cancel/replace
};

}  // namespace lockstep
