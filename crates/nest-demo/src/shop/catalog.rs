//! The shop's fixed catalogue of 100 items.
//!
//! Everything is derived from the id, so runs are reproducible and scripts
//! can rely on it: ids are `1..=100`, and every id ending in 7
//! (`id % 10 == 7`, 10 of them) is discontinued and answers 404, which gives
//! load tests a realistic share of errors to check for.

use serde::Serialize;

/// Highest item id; ids run from 1.
pub(crate) const MAX_ID: u32 = 100;

/// Items per `/items` page.
pub(crate) const PAGE_SIZE: usize = 20;

const ADJECTIVES: [&str; 10] =
    ["Red", "Tiny", "Sturdy", "Shiny", "Quiet", "Golden", "Rusty", "Smart", "Woolly", "Spare"];
const NOUNS: [&str; 10] =
    ["Kettle", "Lamp", "Teapot", "Backpack", "Umbrella", "Notebook", "Bicycle", "Mug", "Scarf", "Clock"];

/// Whether an in-range id is discontinued (answers 404).
pub(crate) fn is_discontinued(id: u32) -> bool {
    id % 10 == 7
}

/// One catalogue item.
pub(crate) struct Item {
    pub(crate) id: u32,
    pub(crate) name: String,
    /// The name lowercased, for `?q=` search.
    lower_name: String,
    pub(crate) price_cents: u64,
    pub(crate) stock: u32,
}

impl Item {
    fn new(id: u32) -> Self {
        let i = (id - 1) as usize;
        // (i % 10, (i / 10 + i % 10) % 10) is a bijection on 0..100: unique names.
        let name = format!("{} {}", ADJECTIVES[i % 10], NOUNS[(i / 10 + i % 10) % 10]);
        Item {
            id,
            lower_name: name.to_lowercase(),
            name,
            price_cents: 199 + u64::from(id * 7919 % 9800),
            stock: id * 37 % 50,
        }
    }

    /// The price in currency units.
    pub(crate) fn price(&self) -> f64 {
        cents_to_units(self.price_cents)
    }

    /// The `/items` listing form: `{id, name, price}`.
    pub(crate) fn summary(&self) -> Summary<'_> {
        Summary { id: self.id, name: &self.name, price: self.price() }
    }

    /// The `/items/{id}` form: `{id, name, price, stock}`.
    pub(crate) fn detail(&self) -> Detail<'_> {
        Detail { id: self.id, name: &self.name, price: self.price(), stock: self.stock }
    }
}

/// Cents to currency units (two decimals).
pub(crate) fn cents_to_units(cents: u64) -> f64 {
    cents as f64 / 100.0
}

/// An item as listed by `/items`.
#[derive(Serialize)]
pub(crate) struct Summary<'a> {
    id: u32,
    name: &'a str,
    price: f64,
}

/// An item as shown by `/items/{id}`.
#[derive(Serialize)]
pub(crate) struct Detail<'a> {
    id: u32,
    name: &'a str,
    price: f64,
    stock: u32,
}

/// All items, indexed by `id - 1`.
pub(crate) struct Catalog {
    items: Vec<Item>,
}

impl Catalog {
    /// The fixed catalogue.
    pub(crate) fn new() -> Self {
        Catalog { items: (1..=MAX_ID).map(Item::new).collect() }
    }

    /// The item with this id, unless it is out of range or discontinued.
    pub(crate) fn get(&self, id: u32) -> Option<&Item> {
        if id == 0 || is_discontinued(id) {
            return None;
        }
        self.items.get((id - 1) as usize)
    }

    /// One page (1-based) of the available items whose name contains
    /// `query` (case-insensitive; `query` must already be lowercase).
    pub(crate) fn page(&self, page: usize, query: Option<&str>) -> Vec<Summary<'_>> {
        self.items
            .iter()
            .filter(|item| !is_discontinued(item.id))
            .filter(|item| query.is_none_or(|q| item.lower_name.contains(q)))
            .skip(page.saturating_sub(1).saturating_mul(PAGE_SIZE))
            .take(PAGE_SIZE)
            .map(Item::summary)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_percent_discontinued() {
        let catalog = Catalog::new();
        let available = (1..=MAX_ID).filter(|&id| catalog.get(id).is_some()).count();
        assert_eq!(available, 90);
        assert!(catalog.get(0).is_none());
        assert!(catalog.get(7).is_none());
        assert!(catalog.get(101).is_none());
        assert_eq!(catalog.get(42).map(|i| i.id), Some(42));
    }

    #[test]
    fn names_are_unique_and_pages_cover_all() {
        let catalog = Catalog::new();
        let names: std::collections::HashSet<&str> = catalog.items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names.len(), 100);
        let sizes: Vec<usize> = (1..=6).map(|p| catalog.page(p, None).len()).collect();
        assert_eq!(sizes, [20, 20, 20, 20, 10, 0]);
        let mugs = catalog.page(1, Some("mug"));
        assert!(!mugs.is_empty());
        assert!(mugs.iter().all(|s| s.name.contains("Mug")));
    }
}
