//! Open integer enums: every known code has a variant, any other integer is
//! kept as `Unknown(n)` and displayed as `unknown (n)`. Converting a code
//! never fails.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal => $label:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A code this program has no name for (communities can customize some).
            Unknown(i64),
        }

        impl $name {
            /// The variant for a wire code; codes without a name give `Unknown`.
            pub fn from_code(code: i64) -> Self {
                match code {
                    $( $code => Self::$variant, )+
                    other => Self::Unknown(other),
                }
            }

            /// The wire code.
            pub fn code(&self) -> i64 {
                match self {
                    $( Self::$variant => $code, )+
                    Self::Unknown(code) => *code,
                }
            }

            /// The default label, `None` for `Unknown`.
            pub fn label(&self) -> Option<&'static str> {
                match self {
                    $( Self::$variant => Some($label), )+
                    Self::Unknown(_) => None,
                }
            }
        }

        impl From<i64> for $name {
            fn from(code: i64) -> Self {
                Self::from_code(code)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.label() {
                    Some(label) => f.write_str(label),
                    None => write!(f, "unknown ({})", self.code()),
                }
            }
        }
    };
}

open_enum! {
    /// A unit's status (`status`). Labels are the CAD defaults; communities
    /// can rename them and add their own codes.
    UnitStatus {
        Unavailable = 0 => "UNAVAILABLE",
        Busy = 1 => "BUSY",
        Available = 2 => "AVAILABLE",
        Enroute = 3 => "ENROUTE",
        OnScene = 4 => "ON_SCENE",
        Offline = 100 => "OFFLINE",
    }
}

open_enum! {
    /// The CAD page a unit is logged into (`data.page`).
    UnitPage {
        /// `-1`, listed by the v2 API as UNKNOWN; also what a missing page reads as.
        Unspecified = -1 => "UNKNOWN",
        Police = 0 => "POLICE",
        Fire = 1 => "FIRE",
        Ems = 2 => "EMS",
        Dispatch = 3 => "DISPATCH",
    }
}

open_enum! {
    /// A dispatch call's status.
    CallStatus {
        Pending = 0 => "PENDING",
        Active = 1 => "ACTIVE",
        Closed = 2 => "CLOSED",
    }
}

open_enum! {
    /// How a dispatch call came in.
    CallOrigin {
        Caller = 0 => "CALLER",
        RadioDispatch = 1 => "RADIO DISPATCH",
        Observed = 2 => "OBSERVED",
        WalkUp = 3 => "WALK UP",
    }
}

open_enum! {
    /// A dispatch call's priority, 1 to 3.
    Priority {
        P1 = 1 => "1",
        P2 = 2 => "2",
        P3 = 3 => "3",
    }
}

open_enum! {
    /// A custom record's `type`.
    RecordType {
        Warrant = 2 => "Warrant",
        Bolo = 3 => "BOLO",
        License = 4 => "License",
        VehicleRegistration = 5 => "Vehicle Reg",
        Character = 7 => "Character",
        PoliceRecord = 8 => "Police Record",
        PoliceReport = 9 => "Police Report",
        MedicalRecord = 10 => "Medical Record",
        MedicalReport = 11 => "Medical Report",
        FireRecord = 12 => "Fire Record",
        FireReport = 13 => "Fire Report",
        DmvRecord = 14 => "DMV Record",
        LawRecord = 15 => "Law Record",
        LawReport = 16 => "Law Report",
    }
}

open_enum! {
    /// Who a tone is played to (`playTonesTo[].type`).
    ToneTargetType {
        AllActiveUnits = 0 => "all active units",
        DispatchCall = 1 => "dispatch call",
        Agency = 2 => "agency",
        Department = 3 => "department",
        Subdivision = 4 => "subdivision",
        UnitIdentifier = 5 => "unit identifier",
        UnitGroup = 6 => "unit group",
    }
}

/// A value the wire sends as either an integer or a string (e.g. a
/// character's record id or DB-sync key, a tone target's value).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    Str(String),
}

impl IntOrString {
    /// The integer, also from a numeric string.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(n) => Some(*n),
            Self::Str(s) => s.trim().parse().ok(),
        }
    }
}

impl fmt::Display for IntOrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(n) => write!(f, "{n}"),
            Self::Str(s) => f.write_str(s),
        }
    }
}
