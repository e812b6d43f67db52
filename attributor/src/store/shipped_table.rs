/// The tables the shipper writes, one INSERT each per shipment. Conversions carry the
/// listing copies, e-mail touches and dedup log with them (materialized views).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShippedTable {
    Conversions,
    Commissions,
    Clicks,
    StatusChanges,
}

impl ShippedTable {
    pub const ALL: [ShippedTable; 4] = [
        ShippedTable::Conversions,
        ShippedTable::Commissions,
        ShippedTable::Clicks,
        ShippedTable::StatusChanges,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            ShippedTable::Conversions => "conversions",
            ShippedTable::Commissions => "commissions",
            ShippedTable::Clicks => "clicks",
            ShippedTable::StatusChanges => "status_changes",
        }
    }
}
