//! The strategy map of a starter: which objectives stay, and the drivers that keep them
//! one connected map when some objectives have no measures.

use std::collections::{BTreeMap, BTreeSet};

use super::{Objective, Template};
use crate::config::Perspective;

/// Perspective rows bottom-up: learning 0, internal 1, customer 2, financial 3.
pub(super) fn layer(perspective: Perspective) -> usize {
    match perspective {
        Perspective::Learning => 0,
        Perspective::Internal => 1,
        Perspective::Customer => 2,
        Perspective::Financial => 3,
    }
}

/// An objective of the starter with its drivers after bridging.
#[derive(Debug, Clone)]
pub(super) struct Placed {
    /// The template's objective.
    pub(super) objective: &'static Objective,
    /// The objectives that drive it.
    pub(super) drivers: Vec<&'static str>,
}

/// The objectives that have measures, with drivers that keep the strategy map one
/// connected map: every objective below financial drives one a row up, every
/// objective above learning is driven from a row down, and separate parts are joined.
/// Needs every perspective to have at least one objective.
pub(super) fn place(template: &Template, measured: &BTreeSet<&str>) -> Vec<Placed> {
    let mut placed: Vec<Placed> = template
        .objectives
        .iter()
        .filter(|objective| measured.contains(objective.id))
        .map(|objective| Placed {
            objective,
            drivers: objective
                .drivers
                .iter()
                .copied()
                .filter(|driver| measured.contains(driver))
                .collect(),
        })
        .collect();
    let row = |placed: &[Placed], n: usize| -> Vec<&'static str> {
        placed
            .iter()
            .filter(|p| layer(p.objective.perspective) == n)
            .map(|p| p.objective.id)
            .collect()
    };
    // Driven from below: an objective whose drivers were all left out takes the row below.
    for i in 0..placed.len() {
        let n = layer(placed[i].objective.perspective);
        if n > 0 && placed[i].drivers.is_empty() {
            placed[i].drivers = row(&placed, n - 1);
        }
    }
    // Driving upwards: an objective that drives nothing drives the first one a row up.
    for i in 0..placed.len() {
        let (id, n) = (
            placed[i].objective.id,
            layer(placed[i].objective.perspective),
        );
        let drives = placed.iter().any(|p| p.drivers.contains(&id));
        if n < 3 && !drives {
            let above = row(&placed, n + 1)[0];
            let target = placed
                .iter_mut()
                .find(|p| p.objective.id == above)
                .expect("the row above is one of the placed objectives");
            target.drivers.push(id);
        }
    }
    // Join separate parts: each part spans all four rows, so an internal objective of
    // the part takes the first learning objective of the main part as a driver.
    loop {
        let parts = components(&placed);
        let main = parts[0];
        let Some(i) = (0..placed.len())
            .find(|&i| parts[i] != main && layer(placed[i].objective.perspective) == 1)
        else {
            break;
        };
        let learning = (0..placed.len())
            .find(|&j| parts[j] == main && layer(placed[j].objective.perspective) == 0)
            .expect("every part of the map reaches the learning row");
        let id = placed[learning].objective.id;
        placed[i].drivers.push(id);
    }
    placed
}

/// The connected part (as the index of its representative) of every placed objective.
pub(super) fn components(placed: &[Placed]) -> Vec<usize> {
    let index: BTreeMap<&str, usize> = placed
        .iter()
        .enumerate()
        .map(|(i, p)| (p.objective.id, i))
        .collect();
    let mut parent: Vec<usize> = (0..placed.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (i, p) in placed.iter().enumerate() {
        for driver in &p.drivers {
            let (a, b) = (root(&mut parent, i), root(&mut parent, index[driver]));
            parent[a] = b;
        }
    }
    (0..placed.len()).map(|i| root(&mut parent, i)).collect()
}
