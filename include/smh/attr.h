/* SPDX-License-Identifier: MIT */
/*
 * Memory attributes of shared multi-heap regions.
 *
 * Each region a board reserves for smh has one attribute, named in its device-tree node by the
 * `capability` property. A client asks for memory "with attribute X"; only regions with that
 * attribute serve it.
 *
 * Adding an attribute: append an enumerator here (before SMH_REG_ATTR_NUM; values are part of
 * the ABI and the wire protocol, so never renumber), then add its row to the table in
 * common/attr.c (the build fails until you do) and its name to the `capability` enum of
 * dts/bindings/shared-multi-heap.yaml (the unit tests fail until you do).
 */
#ifndef SMH_ATTR_H
#define SMH_ATTR_H

enum smh_reg_attr { SMH_REG_ATTR_CACHEABLE = 0, SMH_REG_ATTR_NON_CACHEABLE = 1, SMH_REG_ATTR_NUM };

#endif
